# Trainwatch API server. Build: docker build -t trainwatch .
# Run:   docker run -p 8000:8000 -v trainwatch-data:/data [-e TRAINWATCH_TOKEN=...] trainwatch
# Replicas on PostgreSQL: the same image with -e TRAINWATCH_DB=postgres://user:pass@db:5432/trainwatch and
#        -e TRAINWATCH_REPLICA_ID=api-1 (Bun's SQL client is built in: no package to add). /data then keeps only the
#        models of the local trainings that replica runs.
#
# Bun comes from the npm registry (a devDependency), so the image starts from the
# official Node.js image and installs everything with `npm ci`, as the README does.

FROM node:22-bookworm-slim AS deps
WORKDIR /app
# python3/make/g++ let an optional native addon try to build; the optional
# @tensorflow/tfjs-node(-gpu) packages may still fail to install, which npm tolerates.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund \
 && node_modules/.bin/bun --version \
 && npm cache clean --force

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    TRAINWATCH_DB=/data/trainwatch.db \
    TRAINWATCH_MODELS_DIR=/data/models \
    PATH=/app/node_modules/.bin:$PATH
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
# Everything the server needs at run time; .dockerignore keeps out tests, local data and node_modules.
COPY --chown=node:node . .
RUN mkdir -p /data/models && chown -R node:node /data
# The official image's unprivileged user (uid 1000).
USER node
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bun", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 8000}/api/v1/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: bun is PID 1 and gets SIGTERM, so the server shuts down cleanly.
CMD ["bun", "run", "src/server.ts"]
