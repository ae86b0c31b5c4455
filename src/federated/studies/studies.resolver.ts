import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Actor, AnyRole, CurrentActor, Roles } from '../../auth';
import {
  CreateStudyInput,
  RegisterTrainingNodeInput,
  StudyModel,
  TrainingNodeModel,
} from './study.model';
import { StudiesService } from './studies.service';

@Resolver(() => StudyModel)
export class StudiesResolver {
  constructor(private readonly service: StudiesService) {}

  @Roles('RESEARCHER')
  @Mutation(() => StudyModel, { description: 'A study to train a model on consenting patients.' })
  createStudy(@CurrentActor() actor: Actor, @Args('input') input: CreateStudyInput) {
    return this.service.create(actor, input);
  }

  /** The catalogue is public to every role: patients join a study by consenting to it. */
  @AnyRole()
  @Query(() => [StudyModel], { description: 'Every study; patients join one by consenting to it.' })
  studies() {
    return this.service.list();
  }

  @AnyRole()
  @Query(() => StudyModel, { nullable: true })
  study(@Args('id', { type: () => ID }) id: string) {
    return this.service.get(id);
  }

  @Roles('ADMIN')
  @Mutation(() => TrainingNodeModel, {
    description:
      "Registers an organisation's training node and the public key it signs updates with.",
  })
  registerTrainingNode(
    @CurrentActor() actor: Actor,
    @Args('input') input: RegisterTrainingNodeInput,
  ) {
    return this.service.registerNode(actor, input);
  }
}
