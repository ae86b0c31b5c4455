import { ArgumentsHost, Logger } from '@nestjs/common';
import { ErrorFilter } from './error.filter';
import { NotFoundError } from './errors';

/** A plain HTTP host whose response records what the filter answered. */
function httpHost() {
  const res = {
    headersSent: false,
    statusCode: 0,
    body: undefined as unknown,
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    json(body: unknown) {
      this.body = body;
      return this;
    },
  };
  const host = {
    getType: () => 'http',
    switchToHttp: () => ({ getResponse: () => res }),
  } as unknown as ArgumentsHost;
  return { host, res };
}

describe('ErrorFilter on plain HTTP routes', () => {
  afterEach(() => jest.restoreAllMocks());

  it('answers an unexpected error with 500 INTERNAL and a reference, its message in neither the answer nor the log', () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const { host, res } = httpHost();
    new ErrorFilter().catch(new Error('patient Jane Doe'), host);

    expect(res.statusCode).toBe(500);
    const [error] = (
      res.body as { errors: { message: string; extensions: Record<string, unknown> }[] }
    ).errors;
    expect(error.extensions.code).toBe('INTERNAL');
    expect(error.message).toContain(`reference ${String(error.extensions.reference)}`);
    expect(JSON.stringify(res.body)).not.toContain('Jane');
    expect(logged).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(logged.mock.calls[0])).not.toContain('Jane');
    expect(logged.mock.calls[0][0]).toMatchObject({ reference: error.extensions.reference });
  });

  it('answers one of our own errors with its status, message and contract code', () => {
    const { host, res } = httpHost();
    new ErrorFilter().catch(new NotFoundError('No such run.'), host);

    expect(res.statusCode).toBe(404);
    expect(res.body).toEqual({
      errors: [{ message: 'No such run.', extensions: { code: 'NOT_FOUND' } }],
    });
  });
});
