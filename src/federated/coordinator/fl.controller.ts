// The binary side of the federated protocol: nodes download a round's global model and post
// their update (float32 little-endian body, signed manifest in X-Custodia-Manifest).
import {
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  Param,
  PipeTransform,
  Post,
  Query,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { Roles } from '../../auth';
import { BadUserInputError } from '../../common/errors';
import { Coordinator } from './coordinator.service';
import { UpdateStatus } from './run.model';

/** Rounds are numbered from 1 and stored as PostgreSQL integers; anything else names none. */
class RoundNumberPipe implements PipeTransform<string, number> {
  transform(value: string): number {
    const round = /^[1-9][0-9]{0,9}$/.test(value) ? Number(value) : NaN;
    if (!(round <= 2 ** 31 - 1)) {
      throw new BadUserInputError('round must be a whole number from 1 to 2147483647', 'round');
    }
    return round;
  }
}

@Controller('fl/runs/:runId')
export class FlController {
  constructor(private readonly coordinator: Coordinator) {}

  @Roles('NODE', 'RESEARCHER')
  @Get('rounds/:round/model')
  @Header('Content-Type', 'application/octet-stream')
  async roundModel(
    @Param('runId') runId: string,
    @Param('round', RoundNumberPipe) round: number,
  ): Promise<StreamableFile> {
    return new StreamableFile(await this.coordinator.roundModel(runId, round));
  }

  /**
   * The run's latest global model (its final one once completed): a TensorFlow.js model.json
   * with the weights embedded, or with `?format=float32` the bare weights.
   */
  @Roles('NODE', 'RESEARCHER')
  @Get('model')
  async latestModel(
    @Param('runId') runId: string,
    @Query('format') format: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ) {
    const { weights, study } = await this.coordinator.latestModel(runId);
    if (format === 'float32') {
      res.type('application/octet-stream');
      return new StreamableFile(weights);
    }
    if (format !== undefined && format !== 'tfjs') {
      throw new BadUserInputError('format must be tfjs (the default) or float32', 'format');
    }
    // Loaded on demand: the model code brings TensorFlow.js.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { exportModel } = require('../model/export') as typeof import('../model/export');
    const flat = new Float32Array(
      weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    );
    res.setHeader('Content-Disposition', 'attachment; filename="model.json"');
    return exportModel(study.model, study.features, study.label, flat);
  }

  @Roles('NODE')
  @Post('rounds/:round/updates')
  @HttpCode(202)
  async submit(
    @Param('runId') runId: string,
    @Param('round', RoundNumberPipe) round: number,
    @Headers('x-custodia-manifest') manifest: string | undefined,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ) {
    if (!Buffer.isBuffer(req.body)) {
      throw new BadUserInputError('send the update as an application/octet-stream body');
    }
    const result = await this.coordinator.submit(runId, round, manifest, req.body);
    if (result.status === UpdateStatus.REJECTED) res.status(422);
    return result;
  }
}
