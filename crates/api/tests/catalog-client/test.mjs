// Backstage's own catalog client (@backstage/catalog-client, pinned in package.json) against a
// served surveyor catalog: every read method, with assertions on the answers.
// Usage: node test.mjs <base url of the server> <trigger token>
// The fixture is the Rust test's (crates/api/tests/catalog_client.rs): 12 components
// `svc-00`..`svc-11` owned by group `team-a`, served with max_page_size 5.
import assert from 'node:assert/strict';
import { CatalogClient, CATALOG_FILTER_EXISTS } from '@backstage/catalog-client';

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: node test.mjs <base url> <trigger token>');
  process.exit(2);
}
const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
  fetchApi: { fetch: (...args) => fetch(...args) },
});

const components = Array.from({ length: 12 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
const names = items => items.map(e => e.metadata.name);
const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check('getEntities: every match, past the page size, no limit given', async () => {
  const { items } = await client.getEntities({ filter: { kind: 'Component' }, fields: ['metadata.name'] });
  assert.deepEqual(names(items), components);
  assert.deepEqual(Object.keys(items[0]), ['metadata'], 'fields projects');
});
check('getEntities: filter with CATALOG_FILTER_EXISTS and alternatives', async () => {
  const { items } = await client.getEntities({
    filter: [{ kind: 'Group' }, { 'metadata.annotations.surveyor.dev/tier': CATALOG_FILTER_EXISTS }],
    fields: ['metadata.name'],
  });
  assert.deepEqual(names(items), ['svc-00', 'svc-03', 'svc-06', 'svc-09', 'team-a']);
});
check('getEntities: order desc, then asc with offset/limit', async () => {
  const desc = await client.getEntities({
    filter: { kind: 'Component' },
    order: { field: 'metadata.name', order: 'desc' },
    fields: ['metadata.name'],
  });
  assert.deepEqual(names(desc.items), [...components].reverse());
  const page = await client.getEntities({
    filter: { kind: 'Component' },
    order: [{ field: 'metadata.name', order: 'asc' }],
    offset: 3,
    limit: 4,
    fields: ['metadata.name'],
  });
  assert.deepEqual(names(page.items), components.slice(3, 7));
});
check('getEntities: a limit over the page size', async () => {
  const { items } = await client.getEntities({ limit: 5000, fields: ['metadata.name'] });
  assert.equal(items.length, 13);
});
check('getEntitiesByRefs: request order, undefined for the unknown, fields', async () => {
  const { items } = await client.getEntitiesByRefs({
    entityRefs: ['component:default/svc-02', 'component:default/nope', 'group:default/team-a'],
    fields: ['kind', 'metadata.name'],
  });
  assert.deepEqual(items, [
    { kind: 'Component', metadata: { name: 'svc-02' } },
    undefined,
    { kind: 'Group', metadata: { name: 'team-a' } },
  ]);
  const filtered = await client.getEntitiesByRefs({
    entityRefs: ['component:default/svc-02', 'group:default/team-a'],
    filter: { kind: 'Group' },
  });
  assert.equal(filtered.items[0], undefined);
  assert.equal(filtered.items[1].metadata.name, 'team-a');
});
check('queryEntities: cursors to the end, totalItems, order', async () => {
  let page = await client.queryEntities({
    filter: { kind: 'Component' },
    limit: 5,
    orderFields: { field: 'metadata.name', order: 'desc' },
    fields: ['metadata.name'],
  });
  assert.equal(page.totalItems, 12);
  const seen = names(page.items);
  let pages = 1;
  while (page.pageInfo.nextCursor) {
    page = await client.queryEntities({ cursor: page.pageInfo.nextCursor });
    assert.equal(page.totalItems, 12, 'the total holds across pages');
    seen.push(...names(page.items));
    pages += 1;
  }
  assert.equal(pages, 3);
  assert.deepEqual(seen, [...components].reverse());
  const back = await client.queryEntities({ cursor: page.pageInfo.prevCursor });
  assert.deepEqual(names(back.items), [...components].reverse().slice(5, 10));
});
check('queryEntities: no limit is every match; full-text search', async () => {
  const all = await client.queryEntities({ filter: { kind: 'Component' } });
  assert.equal(all.items.length, 12);
  assert.equal(all.pageInfo.nextCursor, undefined);
  const found = await client.queryEntities({ fullTextFilter: { term: 'svc-07' } });
  assert.deepEqual(names(found.items), ['svc-07']);
});
check('streamEntities: pages of 5, totalItems excluded', async () => {
  const seen = [];
  for await (const items of client.streamEntities({ pageSize: 5, filter: { kind: 'Component' } })) {
    seen.push(...names(items));
  }
  assert.deepEqual(seen, components);
});
check('getEntityByRef: found, and undefined for the unknown', async () => {
  const e = await client.getEntityByRef('component:default/svc-01');
  assert.equal(e.metadata.name, 'svc-01');
  assert.equal(typeof e.metadata.uid, 'string');
  assert.deepEqual(e.relations, [{ type: 'ownedBy', targetRef: 'group:default/team-a' }]);
  const a = e.metadata.annotations;
  assert.equal(a['backstage.io/managed-by-location'], 'file:catalog/svc-01.yaml');
  assert.equal(a['backstage.io/managed-by-origin-location'], 'file:catalog/svc-01.yaml');
  assert.equal(await client.getEntityByRef('component:default/nope'), undefined);
});
check('getEntityAncestors: the root only', async () => {
  const a = await client.getEntityAncestors({ entityRef: 'component:default/svc-01' });
  assert.equal(a.rootEntityRef, 'component:default/svc-01');
  assert.equal(a.items.length, 1);
  assert.deepEqual(a.items[0].parentEntityRefs, []);
  assert.equal(a.items[0].entity.metadata.name, 'svc-01');
});
check('getEntityFacets', async () => {
  const { facets } = await client.getEntityFacets({ facets: ['kind', 'spec.type'] });
  assert.deepEqual(facets.kind, [{ value: 'Component', count: 12 }, { value: 'Group', count: 1 }]);
  assert.deepEqual(facets['spec.type'], [{ value: 'service', count: 12 }, { value: 'team', count: 1 }]);
  const filtered = await client.getEntityFacets({ facets: ['kind'], filter: { kind: 'Group' } });
  assert.deepEqual(filtered.facets.kind, [{ value: 'Group', count: 1 }]);
});
check('getLocations, getLocationById, getLocationByEntity', async () => {
  const { items } = await client.getLocations();
  assert.equal(items.length, 13, 'one descriptor file per component, and the group\'s connector');
  const file = items.find(l => l.type === 'file' && l.target === 'catalog/svc-01.yaml');
  assert.ok(file, JSON.stringify(items));
  assert.deepEqual(await client.getLocationById(file.id), file);
  assert.deepEqual(await client.getLocationByEntity('component:default/svc-01'), file);
  assert.equal(await client.getLocationById('00000000-0000-0000-0000-000000000000'), undefined);
  assert.equal(await client.getLocationByEntity('component:default/nope'), undefined);
});
check('validateEntity: valid, and every error of an invalid one', async () => {
  const ok = await client.validateEntity(
    { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'fine' }, spec: { type: 'service' } },
    'url:https://example.com/catalog-info.yaml',
  );
  assert.deepEqual(ok, { valid: true });
  const bad = await client.validateEntity(
    { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'not valid!', tags: ['Bad Tag'] } },
    'url:https://example.com/catalog-info.yaml',
  );
  assert.equal(bad.valid, false);
  assert.ok(bad.errors.length >= 2, JSON.stringify(bad));
});
check('refreshEntity: queued; an unknown entity is a NotFoundError', async () => {
  await client.refreshEntity('component:default/svc-01', { token });
  await assert.rejects(client.refreshEntity('component:default/nope', { token }), err => {
    assert.equal(err.name, 'ResponseError');
    assert.equal(err.response.status, 404);
    assert.equal(err.body.error.name, 'NotFoundError');
    return true;
  });
});
check('a read-only catalog refuses writes with NotAllowedError', async () => {
  await assert.rejects(client.removeEntityByUid('some-uid', { token }), err => {
    assert.equal(err.response.status, 403);
    assert.equal(err.body.error.name, 'NotAllowedError');
    return true;
  });
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(e?.stack ?? e).split('\n').join('\n     ')}`);
  }
}
console.log(`catalog-client conformance: ${checks.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
