// The graphql-http server audits against a running server: node audit.mjs URL
// Prints every audit that is not "ok"; exits 1 on any error or warning (notices are reported).
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const counts = { error: 0, warn: 0, notice: 0 };
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  if (result.status === 'ok') continue;
  counts[result.status] += 1;
  console.log(`${result.status.toUpperCase()} ${audit.id} ${audit.name}: ${result.reason}`);
}
console.log(`${counts.error} errors, ${counts.warn} warnings, ${counts.notice} notices`);
process.exit(counts.error || counts.warn ? 1 : 0);
