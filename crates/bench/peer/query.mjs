// Latency of one catalog's by-query: node query.mjs BASE_URL REQUESTS.
// One client, requests one after another on a kept-alive connection, each for one of the 50
// teams' components (kind and owner, 20 a page). Prints one JSON line: p50, p99, mean (ms) and
// the items the first page of team-0 held, so the two catalogs' answers can be compared.
const [base, count] = [process.argv[2], Number(process.argv[3] ?? 200)];
const url = (team) =>
  `${base}/api/catalog/entities/by-query?filter=kind%3Dcomponent%2Crelations.ownedBy%3Dgroup%3Adefault%2Fteam-${team}&limit=20`;

async function get(team) {
  const res = await fetch(url(team));
  if (!res.ok) throw new Error(`${url(team)}: HTTP ${res.status}`);
  return res.json();
}

const first = await get(0);
for (let i = 0; i < 10; i++) await get(i % 50); // warm up
const ms = [];
for (let i = 0; i < count; i++) {
  const t = performance.now();
  await get(i % 50);
  ms.push(performance.now() - t);
}
ms.sort((a, b) => a - b);
const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
const round = (x) => Math.round(x * 100) / 100;
console.log(JSON.stringify({
  p50: round(at(0.5)),
  p99: round(at(0.99)),
  mean: round(ms.reduce((a, b) => a + b, 0) / ms.length),
  items: first.items.length,
  totalItems: first.totalItems ?? null,
}));
