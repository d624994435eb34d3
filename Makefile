# A thin front for the package.json scripts, which do the work.
.PHONY: build test bench demo typecheck deps clean

# dist/stated: the single executable (esbuild bundle + Node SEA with the SQLite addon).
build: deps
	npm run build

# Typecheck, build, bundle the tests, run them (what CI runs, via .ci/run).
test: deps
	npm test

# Typecheck only.
typecheck: deps
	npm run typecheck

# Build, then run bench/run.ts.
bench: deps
	npm run bench

# Run the daemon on the default port with 5 simulated nodes (sim1..sim5).
demo: build
	./dist/stated serve --simulate 5

# Install exactly package-lock.json, only when node_modules is missing or older than it.
deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package-lock.json
	npm ci
	@touch $@

# Remove build outputs (not node_modules).
clean:
	rm -rf dist .build
