// The binary side of the federated protocol: nodes download a round's global model and post
// their update (float32 little-endian body, signed manifest in X-Custodia-Manifest).
import {
  Controller,
  Get,
  Header,
  Headers,
  HttpCode,
  Param,
  ParseIntPipe,
  Post,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { Roles } from '../../auth';
import { BadUserInputError } from '../../common/errors';
import { Coordinator } from './coordinator.service';
import { UpdateStatus } from './run.model';

@Controller('fl/runs/:runId')
export class FlController {
  constructor(private readonly coordinator: Coordinator) {}

  @Roles('NODE', 'RESEARCHER')
  @Get('rounds/:round/model')
  @Header('Content-Type', 'application/octet-stream')
  async roundModel(
    @Param('runId') runId: string,
    @Param('round', ParseIntPipe) round: number,
  ): Promise<StreamableFile> {
    return new StreamableFile(await this.coordinator.roundModel(runId, round));
  }

  /** The latest global model as float32 little-endian weights. */
  @Roles('NODE', 'RESEARCHER')
  @Get('model')
  @Header('Content-Type', 'application/octet-stream')
  async latestModel(@Param('runId') runId: string): Promise<StreamableFile> {
    return new StreamableFile(await this.coordinator.latestModel(runId));
  }

  @Roles('NODE')
  @Post('rounds/:round/updates')
  @HttpCode(202)
  async submit(
    @Param('runId') runId: string,
    @Param('round', ParseIntPipe) round: number,
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
