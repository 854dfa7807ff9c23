# syntax=docker/dockerfile:1
# Multi-stage: compile with dev dependencies, run the gateway with production
# dependencies and compiled JavaScript only, as the unprivileged `node` user.

FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gateway ./gateway
COPY upstream-mock ./upstream-mock
COPY scripts ./scripts
RUN npm run build
# The demo pages with their bundles of the client library (demo/vendor/, built from client/src).
COPY client/src ./client/src
COPY demo ./demo
RUN npm run build:demo

# The demo identity provider and API. Demo only: it needs oidc-provider, a dev
# dependency, so it runs from the build stage.
FROM build AS upstream-mock
ENV IDP_HOST=0.0.0.0
USER node
EXPOSE 4000 4001
CMD ["node", "dist/upstream-mock/main.js"]

# The gateway: production dependencies, compiled JavaScript, the default route
# policy and the demo page (served only when STATIC_DIR=/app/demo).
FROM node:26-bookworm-slim AS gateway
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/gateway ./dist/gateway
COPY deploy/routes.json ./deploy/routes.json
COPY --from=build /app/demo ./demo
# Inside a container the public listener must take outside connections; the
# admin listener keeps its loopback default (ADMIN_HOST) and is never published.
ENV HOST=0.0.0.0
# Files stay owned by root: the process can read its code, not change it.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: SIGTERM reaches node itself (no shell in between); server.ts drains and closes Redis.
CMD ["node", "dist/gateway/server.js"]
