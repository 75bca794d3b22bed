# One image for every process; docker-compose.yml / the platform picks the command (see Procfile).
FROM node:22-slim

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first: this layer is reused as long as the lockfile does not change.
# --include=dev: TypeScript is needed for the build below; dev packages are pruned after it.
COPY package.json package-lock.json ./
RUN npm ci --include=dev --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY migrations ./migrations
COPY src ./src
COPY workers ./workers
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

USER node
EXPOSE 3000
# Overridden per service; the worker is the default because it is the one that scales.
CMD ["node", "--max-semi-space-size=64", "dist/workers/worker.js"]
