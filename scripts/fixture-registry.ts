/**
 * `npm run fixture-registry`: a real Distribution registry on a free loopback port, filled with the
 * test fixtures (an OCI image with several layers, a three-platform index, a Docker v2s2 image…),
 * to try berth without reaching any registry on the network. Ctrl-C stops it.
 */
import { pushStandardFixtures } from '../test/helpers/fixtures.js';
import { startRegistry } from '../test/helpers/registry-server.js';

const registry = await startRegistry();
const fixtures = await pushStandardFixtures({ url: registry.url });
console.log(`registry at ${registry.host} holds:`);
for (const [name, image] of Object.entries(fixtures)) {
  if ('reference' in image) console.log(`  ${image.reference}   (${name})`);
}
process.once('SIGINT', () => void registry.stop().then(() => process.exit(0)));
process.once('SIGTERM', () => void registry.stop().then(() => process.exit(0)));
