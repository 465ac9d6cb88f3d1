export {
  createIdentityManager, systemClock, unverifiedClaims,
  type CertsView, type IdentityClock, type IdentityManager, type IdentityManagerOptions, type WorkloadSvid,
} from './identity-manager.js';
