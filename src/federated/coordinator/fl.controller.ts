// The binary side of the federated protocol: nodes download a round's global model and post
// their update (float32 little-endian body, signed manifest in X-Custodia-Manifest).
import {
  Controller,
  Get,
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
import { Actor, CurrentActor, Roles } from '../../auth';
import { BadUserInputError } from '../../common/errors';
import type { ModelPreset } from '../model/architecture';
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

  // The type is set once the model is in hand, not by @Header: Nest sets that before the pipes
  // and the handler run, and Express's json() keeps it, so errors went out as octet-stream.
  @Roles('NODE', 'RESEARCHER')
  @Get('rounds/:round/model')
  async roundModel(
    @CurrentActor() actor: Actor,
    @Param('runId') runId: string,
    @Param('round', RoundNumberPipe) round: number,
    @Res({ passthrough: true }) res: Response,
  ): Promise<StreamableFile> {
    await this.coordinator.requireNodeOrStaff(actor);
    const weights = await this.coordinator.roundModel(runId, round);
    res.type('application/octet-stream');
    return new StreamableFile(weights);
  }

  /**
   * The run's latest global model (its final one once completed): a TensorFlow.js model.json
   * with the weights embedded, or with `?format=float32` the bare weights. ADMIN may take it
   * too, as it may read the run and deploy the model; round models stay with the training.
   */
  @Roles('NODE', 'RESEARCHER', 'ADMIN')
  @Get('model')
  async latestModel(
    @CurrentActor() actor: Actor,
    @Param('runId') runId: string,
    @Query('format') format: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ) {
    await this.coordinator.requireNodeOrStaff(actor);
    if (format !== undefined && format !== 'tfjs' && format !== 'float32') {
      throw new BadUserInputError('format must be tfjs (the default) or float32', 'format');
    }
    const { weights, study } = await this.coordinator.latestModel(runId);
    if (format === 'float32') {
      res.type('application/octet-stream');
      return new StreamableFile(weights);
    }
    const model = await this.exported(study, weights);
    // Headers only once the export has succeeded, so a failure is not offered as a download.
    res.setHeader('Content-Disposition', 'attachment; filename="model.json"');
    return model;
  }

  /**
   * The weights file model.json names (`weightsManifest[0].paths`), in the layers' order, as
   * `tf.loadLayersModel` fetches it from beside the model.json (with the same headers, the
   * token included; a query string on the model's URL is passed on and ignored here).
   */
  @Roles('NODE', 'RESEARCHER', 'ADMIN')
  @Get('model/weights.bin')
  async latestModelWeights(
    @CurrentActor() actor: Actor,
    @Param('runId') runId: string,
    @Res({ passthrough: true }) res: Response,
  ): Promise<StreamableFile> {
    await this.coordinator.requireNodeOrStaff(actor);
    const { weights, study } = await this.coordinator.latestModel(runId);
    const model = await this.exported(study, weights);
    res.type('application/octet-stream');
    return new StreamableFile(Buffer.from(model.weightData, 'base64'));
  }

  private async exported(
    study: { model: ModelPreset; features: string[]; label: string },
    weights: Buffer,
  ) {
    // Loaded on demand: the model code brings TensorFlow.js.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { exportModel } = require('../model/export') as typeof import('../model/export');
    const flat = new Float32Array(
      weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    );
    return exportModel(study.model, study.features, study.label, flat);
  }

  @Roles('NODE')
  @Post('rounds/:round/updates')
  @HttpCode(202)
  async submit(
    @Param('runId') runId: string,
    @Param('round', RoundNumberPipe) round: number,
    @Headers('x-custodia-manifest') manifest: string | undefined,
    @CurrentActor() actor: Actor,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ) {
    if (!Buffer.isBuffer(req.body)) {
      throw new BadUserInputError('send the update as an application/octet-stream body');
    }
    // The update is the calling node's: its token names it, whatever the manifest claims.
    const result = await this.coordinator.submit(runId, round, manifest, req.body, {
      from: actor.id,
    });
    if (result.status === UpdateStatus.REJECTED) res.status(422);
    return result;
  }
}
