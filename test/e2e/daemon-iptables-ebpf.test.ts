// The daemon end to end with the iptables firewall and ebpf capture: the shared
// scenario table of support/daemon-scenarios.ts (one backend per file, so the
// four combinations run side by side).
import { reportProgress } from '../support/progress.js';
import { describeDaemonScenarios } from './support/daemon-scenarios.js';

reportProgress(import.meta.url);
describeDaemonScenarios({ firewall: 'iptables', capture: 'ebpf' });
