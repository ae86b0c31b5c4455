export {
  contributorLeaf,
  contributorLeaves,
  contributorsRoot,
  merkleProof,
  merkleRoot,
  newContributorSalt,
  verifyMerkleProof,
  type Contributor,
  type MerkleProof,
} from './merkle';
export { modelHash, roundRecord, type RoundProvenance, type RoundRecord } from './round-record';
