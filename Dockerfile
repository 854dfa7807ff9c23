# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies, run with production ones only, as a non-root user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gateway ./gateway
COPY upstream-mock ./upstream-mock
COPY scripts ./scripts
RUN npm run build

# The demo identity provider and API (needs oidc-provider, a dev dependency).
FROM build AS upstream-mock
USER node
EXPOSE 4000 4001
CMD ["node", "dist/upstream-mock/main.js"]

# The gateway: production dependencies and compiled JavaScript only.
FROM node:20-bookworm-slim AS gateway
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/gateway ./dist/gateway
COPY deploy/routes.json ./deploy/routes.json
USER node
EXPOSE 3000 3001
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/gateway/server.js"]
