# A thin front for the package.json scripts, which do the work.
.PHONY: build test bench demo typecheck deps system clean

# dist/stated: the single executable (esbuild bundle + Node SEA with the SQLite addon).
build: deps
	npm run build

# Typecheck, build, bundle the tests, run them (what CI runs, via .ci/run).
test: deps
	npm test

# Typecheck only.
typecheck: deps
	npm run typecheck

# Build, then run the benchmarks (bench/run.ts: event throughput; bench/waits.ts: wait latency). Figures only.
bench: deps
	npm run bench

# Run the daemon on the default port with 5 simulated nodes (sim1..sim5).
demo: build
	./dist/stated serve --simulate 5

# Install exactly package-lock.json, only when node_modules is missing or older than it.
deps: system node_modules/.package-lock.json

node_modules/.package-lock.json: package-lock.json
	npm ci
	@touch $@

# better-sqlite3 compiles from source here: it needs a C++ compiler, make and python3.
# The dashboard's browser tests drive Debian's chromium (puppeteer-core brings no browser).
# Installed with apt-get when missing (CI and fresh machines run as root).
system:
	@command -v g++ >/dev/null && command -v python3 >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ make python3; }
	@command -v chromium >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Remove build outputs (not node_modules).
clean:
	rm -rf dist .build
