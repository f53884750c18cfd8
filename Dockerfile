# berth's image: the API (`npm run api`) and the worker (`npm run worker`) run from the same build.
FROM node:20-bookworm-slim

WORKDIR /app
# Full install: the processes run TypeScript through tsx, which is a devDependency.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY migrations ./migrations
COPY src ./src

# The content store; compose mounts a volume shared by the API and the worker here.
RUN mkdir -p /var/lib/berth && chown node:node /var/lib/berth
USER node

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    BERTH_DATA_DIR=/var/lib/berth
EXPOSE 8080
CMD ["npm", "run", "api"]
