/**
 * The discovery compliance suite for LanMechanism. It needs a multicast-
 * capable interface, so it registers tests only inside the network namespace
 * test/discovery-lan-compliance.test.ts builds (TOOLDB_LAN_IFACE names the
 * interface address); run anywhere else, this file defines no test.
 */
import { LanMechanism } from "../../src/discovery/mechanisms/lan-mechanism.js";
import { discoveryMechanismSuite } from "../compliance/discovery-suite.js";

const iface = process.env.TOOLDB_LAN_IFACE;
if (iface) {
  discoveryMechanismSuite("LanMechanism (multicast DNS in a network namespace)", {
    create: async () => {
      // A server's mechanism answers for port 9300; the one under test only queries.
      const responder = new LanMechanism("lan-compliance", { interface: iface, port: 9300, host: iface });
      await responder.start({ found: () => undefined, roundDone: () => undefined });
      return {
        mechanism: new LanMechanism("lan-compliance", { interface: iface, queryInterval: 200, roundWindow: 300 }),
        expect: { host: iface, port: 9300 },
        cleanup: () => responder.stop(),
      };
    },
  });
}
