# kube-proxy-ts. Every target installs what it needs: npm packages (with the pinned Node 24 from
# the npm registry) and, when running as root, the Debian tools the dataplanes drive.
SHELL := /bin/bash
NODE := $(CURDIR)/node_modules/.bin/node
NPM_BIN := $(CURDIR)/node_modules/.bin
export PATH := $(NPM_BIN):$(PATH)
SIZE ?= 1000
TESTS ?= test/**/*.test.ts

.PHONY: all deps sysdeps build test test-vm unit lint depcheck demo playground bench bench-vm bench-datapath soak blackhole fuzz clean release image test-image image-docker

all: build

# npm ci runs again only when the lock file changed since the last install.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed

# Debian packages for the dataplanes and the network-namespace tests. Installed only when missing,
# and only as root (a non-root run skips the kernel tests with a message instead).
# haproxy: the userspace proxy the data-path benchmark compares against (bench/datapath.ts).
# ipvsadm, ipset: the IPVS mode's tools. nfacct: the iptables mode's packet counters (metrics).
# systemd-analyze: the unit file check (test/e2e/release-systemd.test.ts). debootstrap, umoci: the
# image build without a Docker engine (make image). strip (binutils): make release.
# chromium: the real browser the web page test (test/ui/) drives through playwright-core.
SYS_TOOLS := iptables:iptables nft:nftables conntrack:conntrack ip:iproute2 curl:curl haproxy:haproxy ipvsadm:ipvsadm ipset:ipset nfacct:nfacct \
  systemd-analyze:systemd debootstrap:debootstrap umoci:umoci strip:binutils chromium:chromium
sysdeps:
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=""; for pair in $(SYS_TOOLS); do \
	    tool=$${pair%%:*}; pkg=$${pair##*:}; \
	    command -v $$tool >/dev/null 2>&1 || PATH=$$PATH:/usr/sbin:/sbin command -v $$tool >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	else echo "not root: skipping Debian packages (kernel tests will be skipped)"; fi

# build-info.json: the commit, tree state and date that --version=raw and kubernetes_build_info
# report (empty fields outside a git checkout). The web page's files (src/ui/assets: HTML, CSS and
# a checked JS module) go beside the build.
build: deps
	tsc -p tsconfig.build.json
	rm -rf dist/ui/assets && mkdir -p dist/ui && cp -r src/ui/assets dist/ui/assets
	@commit=$$(git rev-parse HEAD 2>/dev/null || true); \
	  state=$$( [ -z "$$commit" ] && echo "" || { git diff --quiet HEAD 2>/dev/null && echo clean || echo dirty; } ); \
	  printf '{"gitCommit":"%s","gitTreeState":"%s","buildDate":"%s"}\n' "$$commit" "$$state" "$$(date -u +%Y-%m-%dT%H:%M:%SZ)" > build-info.json

# The one test command: type check, lint, format check, then every test with node's runner.
test: deps sysdeps build release test-image
	tsc --noEmit -p tsconfig.json
	tsc -p src/ui/assets
	eslint .
	$(DEPCHECK)
	prettier --check .
	node --test --test-reporter=spec --test-timeout=300000 '$(TESTS)'
	$(MAKE) --no-print-directory test-vm

# The VM lane (test/vm/): IPVS and SCTP traffic, mode switches and a smoke run of the other modes
# on Debian's stock kernel, which this machine's kernel cannot run. It fetches QEMU, the kernel and
# the guest's tools through apt on first use; as non-root it is skipped with a message.
test-vm: deps build
	node test/vm/lane.ts

# Only the pure unit tests: fast, no root needed.
unit: deps
	node --test --test-reporter=spec 'test/unit/**/*.test.ts'

lint: deps
	tsc --noEmit -p tsconfig.json
	tsc -p src/ui/assets
	eslint .
	$(DEPCHECK)
	prettier --check .

# Import rules (.dependency-cruiser.json): no import cycles, and the layering of issue 10 (model
# and plan stay pure, util is a leaf, sync/conntrack do not reach into server, dataplanes do not
# reach into cli/daemon). Type-only imports count.
DEPCHECK := depcruise --config .dependency-cruiser.json src test bench examples
depcheck: deps
	$(DEPCHECK)

demo: deps sysdeps build
	node examples/demo.ts

# The playground (docs/playground.md): the demo's cluster with a kubectl-like prompt; after every
# change, the sync it caused and the rule diff. Needs root. Another mode:
# make playground PLAYGROUND_ARGS='--proxy-mode iptables'
PLAYGROUND_ARGS ?=
playground: deps sysdeps build
	bin/kube-proxy playground $(PLAYGROUND_ARGS)

# The control-plane benchmark (bench/run.ts), then the data-path one (bench/datapath.ts), then
# the IPVS column, which needs a kernel with IPVS: bench-vm.
bench: deps sysdeps build
	node bench/run.ts --size $(SIZE)
	node bench/datapath.ts $(DATAPATH_ARGS)
	$(MAKE) --no-print-directory bench-vm

# The control-plane benchmark inside the VM lane's Debian kernel (software emulation), IPVS next
# to iptables-nft and nftables in one run: figures compare modes within that run only.
# 50 Services take about 11 minutes under emulation; 300 did not finish in an hour.
VM_SIZE ?= 50
bench-vm: deps build
	KUBE_PROXY_VM_TIMEOUT_MINUTES=60 node test/vm/run.ts "cd $(CURDIR) && KUBE_PROXY_TEST_TIMEOUT_SCALE=4 $(NODE) bench/run.ts --size $(VM_SIZE) --modes iptables-nft,nftables,ipvs --changes 30 --churn-changes 20 --out bench/results-vm.json"

# The soak run (bench/soak.ts, issue 15 goal 7): an hour of endpoint churn (20/s over 1000
# Services) with an API fault every minute against the real kube-proxy; a table and a chart
# (bench/soak-results/, PNG rendered by chromium) of RSS, heap, descriptors, children, timers and
# latency; fails when RSS grows > 5 % after the first 10 minutes, anything leaked or latency
# climbed. Shorter: make soak SOAK_MINUTES=15; another mode: SOAK_MODE=iptables-nft.
SOAK_MINUTES ?= 60
SOAK_MODE ?= nftables
SOAK_ARGS ?=
soak: deps sysdeps build
	node bench/soak.ts --minutes $(SOAK_MINUTES) --mode $(SOAK_MODE) $(SOAK_ARGS)

# The long black-hole run (bench/blackhole.ts, issue 15 goal 3): kube-proxy's path to the API
# server silently dropped for BLACKHOLE_SECONDS (200: TCP's resend interval reaches its 2-minute
# cap), a Service created meanwhile; prints the time from the path's return to the change and to
# every watch, exits 1 above 60 s. Minutes long, so not in make test (which runs a 32-s one).
# More runs or another mode: BLACKHOLE_ARGS='--runs 3 --mode iptables'.
BLACKHOLE_SECONDS ?= 200
BLACKHOLE_ARGS ?=
blackhole: deps sysdeps build
	node bench/blackhole.ts --seconds $(BLACKHOLE_SECONDS) $(BLACKHOLE_ARGS)

# Only the data path: nftables vs HAProxy vs userspace mode, e.g. DATAPATH_ARGS='--seconds 3'.
DATAPATH_ARGS ?=
bench-datapath: deps sysdeps build
	node bench/datapath.ts $(DATAPATH_ARGS)

# One self-contained executable (Node's single executable application, the pinned Node 24), its
# SHA-256 and a tarball with the systemd unit, the manifests and the licence notices
# (scripts/release/build.ts, docs/install.md). Rebuilt only when a source or its inputs changed.
RELEASE_INPUTS := $(shell find src scripts/release deploy -type f 2>/dev/null) docs/install.md package.json package-lock.json
release: release/kube-proxy
release/kube-proxy: node_modules/.installed $(RELEASE_INPUTS)
	@$(MAKE) --no-print-directory sysdeps SYS_TOOLS="strip:binutils"
	node scripts/release/build.ts

# The OCI image (release/kube-proxy-ts-image.tar), built without a Docker engine: a Debian base made
# by debootstrap (cached under /var/cache/kube-proxy-ts-image) plus release/kube-proxy, packed by
# umoci (scripts/release/image.ts). With Docker, `make image-docker` builds deploy/Dockerfile instead.
IMAGE_TAG ?= kube-proxy-ts:$(shell node -p 'require("./package.json").version' 2>/dev/null)
image: release/kube-proxy-ts-image.tar
release/kube-proxy-ts-image.tar: release/kube-proxy scripts/release/image.ts
	@$(MAKE) --no-print-directory sysdeps SYS_TOOLS="debootstrap:debootstrap umoci:umoci"
	node scripts/release/image.ts

# make test builds the image only as root (debootstrap needs root); otherwise its test is skipped
# with a message saying so.
test-image:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory image; \
	else echo "not root: skipping make image (test/e2e/image.test.ts will be skipped)"; fi

image-docker:
	docker build -f deploy/Dockerfile -t $(IMAGE_TAG) .

# The long run of the hostile-input and watch-stream fuzzing (test/unit/fuzz/; make test runs 150
# cases of each).
FUZZ_RUNS ?= 100000
fuzz: deps
	KUBE_PROXY_FUZZ_RUNS=$(FUZZ_RUNS) node --test --test-reporter=spec --test-timeout=0 'test/unit/fuzz/*.test.ts'

clean:
	rm -rf dist coverage release
