// A Backstage backend with only the catalog plugin: what backstage.sh ingests into and queries.
// Its configuration (Postgres, the location to read, open reads) is the app-config.yaml the
// script writes and passes with --config.
const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(require('@backstage/plugin-catalog-backend'));
backend.start();
