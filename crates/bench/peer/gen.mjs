// Writes the descriptor files both catalogs ingest: node gen.mjs N DIR.
// N Components in files of 100 documents (DIR/entities/components-NNNN.yaml), each owned by one
// of 50 teams, part of one of 100 systems, depending on the one before it; plus the 50 Groups
// and 100 Systems (DIR/entities/org.yaml).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [n, dir] = [Number(process.argv[2]), process.argv[3]];
if (!Number.isInteger(n) || n < 1 || !dir) {
  console.error('usage: node gen.mjs N DIR');
  process.exit(2);
}
const TEAMS = 50;
const SYSTEMS = 100;
const out = join(dir, 'entities');
mkdirSync(out, { recursive: true });

const org = [];
for (let t = 0; t < TEAMS; t++) {
  org.push(`apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-${t}
spec:
  type: team
  children: []
`);
}
for (let s = 0; s < SYSTEMS; s++) {
  org.push(`apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: system-${s}
spec:
  owner: group:default/team-${s % TEAMS}
`);
}
writeFileSync(join(out, 'org.yaml'), org.join('---\n'));

for (let start = 0; start < n; start += 100) {
  const docs = [];
  for (let i = start; i < Math.min(n, start + 100); i++) {
    const depends = i > 0 ? `\n  dependsOn:\n    - component:default/svc-${i - 1}` : '';
    docs.push(`apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: svc-${i}
  description: Service number ${i}
  tags: [generated, tier-${i % 3}]
  annotations:
    example.com/cost-center: cc-${i % 20}
spec:
  type: service
  lifecycle: production
  owner: group:default/team-${i % TEAMS}
  system: system-${i % SYSTEMS}${depends}
`);
  }
  const name = `components-${String(start / 100).padStart(4, '0')}.yaml`;
  writeFileSync(join(out, name), docs.join('---\n'));
}
