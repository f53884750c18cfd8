-- 0001: berth's first schema: pulled images (names, repo digests, layers) and the pull jobs' records.
-- Names are unqualified: the schema is chosen by the connection's search_path (see src/db/pool.ts).

-- One row per image, keyed like Docker by its config digest ("image ID").
-- pulled_at is kept to whole milliseconds so that the list cursor (a JS Date) compares exactly.
CREATE TABLE images (
  id                  text COLLATE "C" PRIMARY KEY CHECK (id ~ '^sha256:[a-f0-9]{64}$'),
  size                bigint NOT NULL CHECK (size >= 0),     -- config + compressed layers, as stored
  os                  text NOT NULL,
  architecture        text NOT NULL,
  variant             text,
  created             timestamptz,                            -- from the image config, when it says
  config              jsonb NOT NULL,                         -- summary: env, cmd, entrypoint, workingDir, user, labels, exposedPorts, volumes
  config_media_type   text NOT NULL,
  manifest_digest     text NOT NULL,
  manifest_media_type text NOT NULL,
  pulled_at           timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
    CHECK (pulled_at = date_trunc('milliseconds', pulled_at))
);
CREATE INDEX images_pulled_at_id ON images (pulled_at DESC, id DESC);
CREATE INDEX images_manifest_digest ON images (manifest_digest);

-- Tags: a fully qualified repo:tag points at exactly one image; moving it leaves the old image as it is.
-- COLLATE "C" lets the primary key serve the "all tags of a repository" prefix search (name LIKE 'repo:%').
CREATE TABLE names (
  name      text COLLATE "C" PRIMARY KEY,
  image_id  text NOT NULL REFERENCES images (id) ON DELETE CASCADE,
  tagged_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX names_image_id ON names (image_id);

-- repository@digest references an image was pulled by (Docker's RepoDigests); they do not keep it alive.
CREATE TABLE repo_digests (
  image_id   text NOT NULL REFERENCES images (id) ON DELETE CASCADE,
  repository text NOT NULL,                                   -- domain/path
  digest     text NOT NULL,
  PRIMARY KEY (image_id, repository, digest)
);
CREATE INDEX repo_digests_repository_digest ON repo_digests (repository, digest);
CREATE INDEX repo_digests_digest ON repo_digests (digest);

-- The layers of an image in manifest order; digest is indexed for "is this blob still used".
CREATE TABLE layers (
  image_id   text NOT NULL REFERENCES images (id) ON DELETE CASCADE,
  position   integer NOT NULL CHECK (position >= 0),
  digest     text NOT NULL,
  size       bigint NOT NULL CHECK (size >= 0),
  media_type text NOT NULL,
  PRIMARY KEY (image_id, position)
);
CREATE INDEX layers_digest ON layers (digest);

-- One row per pull request. image_id has no foreign key: the record outlives a deleted image.
CREATE TABLE pulls (
  id           uuid PRIMARY KEY,
  image        text NOT NULL,                                 -- as the user wrote it
  reference    text NOT NULL,                                 -- normalized
  platform     text NOT NULL,
  state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  bytes_done   bigint NOT NULL DEFAULT 0,
  bytes_total  bigint NOT NULL DEFAULT 0,
  layers_done  integer NOT NULL DEFAULT 0,
  layers_total integer NOT NULL DEFAULT 0,
  image_id     text,
  error        jsonb,                                         -- {code, message, attempts?}
  source       text,                                          -- the registry or mirror it came from
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  dedupe_key   text
);
-- At most one active pull per key: a second request for the same image joins the first.
CREATE UNIQUE INDEX pulls_active_dedupe_key ON pulls (dedupe_key) WHERE state IN ('queued', 'running');
CREATE INDEX pulls_created_at_id ON pulls (created_at DESC, id DESC);
