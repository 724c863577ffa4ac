# p2http — see README.md. `make run` and `make test` are the two set-up commands.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run test test-deps test-e2e build generate check-generate fmt-check vet check lint-spec bench clean

## run: start p2http in dev mode on the embedded SQLite database (./p2.db)
run:
	P2_DEV=1 $(GO) run -ldflags "$(LDFLAGS)" ./cmd/p2http

## test: install what the tests need (test-deps), then run every test with the race detector
test: test-deps
	$(GO) test -race -count=1 ./...

## test-deps: start PostgreSQL and MariaDB if stopped; install Prosody, ejabberd, Chromium, systemd-analyze, podman, promtool if missing
test-deps:
	@sh scripts/test-deps.sh

## test-e2e: the packages that run real XMPP servers, on the installed generation (see scripts/xmpp-servers.sh)
E2E_PACKAGES := ./e2e/ ./internal/xmppserver/ ./xmppdoctor/
test-e2e: test-deps
	$(GO) test -race -count=1 $(E2E_PACKAGES)

## build: build the binaries into bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

## generate: regenerate the Go client from openapi.yaml
generate:
	$(GO) generate ./...

## check-generate: fail when the generated code is stale
check-generate: generate
	@git diff --exit-code -- api/client || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api/client)" || { echo "untracked generated files: run make generate and commit"; exit 1; }

## fmt-check: fail when a file is not gofmt-formatted
fmt-check:
	@out=$$(gofmt -l .); test -z "$$out" || { echo "not gofmt-formatted:"; echo "$$out"; exit 1; }

## vet: go vet
vet:
	$(GO) vet ./...

## check: everything CI checks besides the tests
check: fmt-check vet check-generate

## lint-spec: lint openapi.yaml with Spectral (spectral:oas) and Redocly CLI, pinned in tools/lint-spec; any error or warning fails (needs Node.js and npm)
lint-spec:
	@sh tools/lint-spec/lint.sh openapi.yaml

## bench: the load benchmark (cmd/p2bench, about 10 minutes; see bench/README.md): prints the results and writes bench/results.md
bench:
	@sh scripts/xmpp-servers.sh ensure
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/p2http ./cmd/p2xmpp ./cmd/p2bench
	bin/p2bench -p2http bin/p2http -p2xmpp bin/p2xmpp -results bench/results.md $(BENCHFLAGS)

clean:
	rm -rf bin/

## update-redoc: vendor Redoc's standalone bundle from the npm registry into api/docs/ (REDOC_VERSION=2 by default)
.PHONY: update-redoc
update-redoc:
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	tgz=$$(cd "$$tmp" && npm pack --silent "redoc@$(or $(REDOC_VERSION),2)"); \
	ver=$${tgz#redoc-}; ver=$${ver%.tgz}; \
	tar -xzf "$$tmp/$$tgz" -C "$$tmp"; p="$$tmp/package"; \
	grep '"license"' "$$p/package.json"; \
	cp "$$p/bundles/redoc.standalone.js" api/docs/redoc.standalone.js; \
	{ cat "$$p/LICENSE"; \
	  printf '\n\n%s\n%s\n%s\n%s\n%s\n\n' \
	    '----------------------------------------------------------------------' \
	    'redoc.standalone.js bundles third-party code. Its notices, from the' \
	    "*.LICENSE.txt files of the same npm package (redoc $$ver), to which" \
	    'the bundle and the search worker inlined in it refer:' \
	    '----------------------------------------------------------------------'; \
	  cat "$$p/bundles/redoc.standalone.js.LICENSE.txt" "$$p"/bundles/*.worker.js.LICENSE.txt; } > api/docs/LICENSE-redoc; \
	sum=$$(sha256sum api/docs/redoc.standalone.js | cut -d' ' -f1); \
	sed -i -e "s/^- Version: .*/- Version: \`$$ver\`/" -e "s/^- SHA-256: .*/- SHA-256: \`$$sum\`/" \
	  -e "s|^- From: .*|- From: \`https://registry.npmjs.org/redoc/-/$$tgz\`, file \`package/bundles/redoc.standalone.js\`|" api/docs/README.md; \
	echo "redoc $$ver: api/docs/redoc.standalone.js, $$(wc -c < api/docs/redoc.standalone.js) bytes, sha256 $$sum"; \
	echo "check the licence above and api/docs/LICENSE-redoc, then: go test ./api/ -run Docs"

## release: static binaries for linux/amd64 and linux/arm64 in dist/ (DIST=…), with SHA256SUMS
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
DIST              ?= dist
.PHONY: release
release:
	rm -rf $(DIST)
	mkdir -p $(DIST)
	set -e; for platform in $(RELEASE_PLATFORMS); do \
		os=$${platform%/*}; arch=$${platform#*/}; \
		for cmd in p2http p2xmpp; do \
			echo "build $(DIST)/$$cmd-$$os-$$arch ($(VERSION))"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
				-ldflags "-s -w -X main.version=$(VERSION)" \
				-o $(DIST)/$$cmd-$$os-$$arch ./cmd/$$cmd; \
		done; \
	done
	cd $(DIST) && sha256sum p2http-* p2xmpp-* > SHA256SUMS
	cat $(DIST)/SHA256SUMS

## image: the container image (Containerfile, FROM scratch) with podman, tagged $(IMAGE):$(VERSION) and $(IMAGE):latest; see docs/container.md
IMAGE         ?= localhost/p2http
IMAGE_CONTEXT ?= bin/image
CA_BUNDLE     ?= /etc/ssl/certs/ca-certificates.crt
.PHONY: image
image:
	rm -rf $(IMAGE_CONTEXT)
	mkdir -p $(IMAGE_CONTEXT)/root/tmp $(IMAGE_CONTEXT)/volume/data
	chmod 1777 $(IMAGE_CONTEXT)/root/tmp
	chmod 0700 $(IMAGE_CONTEXT)/volume/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(IMAGE_CONTEXT)/ ./cmd/p2http ./cmd/p2xmpp
	cp $(CA_BUNDLE) $(IMAGE_CONTEXT)/ca-certificates.crt
	chmod 0755 $(IMAGE_CONTEXT)/p2http $(IMAGE_CONTEXT)/p2xmpp
	chmod 0644 $(IMAGE_CONTEXT)/ca-certificates.crt
	podman build --layers=false --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest -f Containerfile $(IMAGE_CONTEXT)
