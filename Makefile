# p2http — see README.md. `make run` and `make test` are the two set-up commands.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run test build generate check-generate fmt-check vet check bench clean

## run: start p2http in dev mode on the embedded SQLite database (./p2.db)
run:
	P2_DEV=1 $(GO) run -ldflags "$(LDFLAGS)" ./cmd/p2http

## test: run every test with the race detector (needs PostgreSQL on 127.0.0.1:5432)
test:
	$(GO) test -race -count=1 ./...

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

## bench: the load benchmark (cmd/p2bench, about 10 minutes; see bench/README.md): prints the results and writes bench/results.md
bench:
	@test -x /usr/bin/prosody || sh scripts/install-xmpp-servers.sh
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/p2http ./cmd/p2xmpp ./cmd/p2bench
	bin/p2bench -p2http bin/p2http -p2xmpp bin/p2xmpp -results bench/results.md $(BENCHFLAGS)

clean:
	rm -rf bin/

## release: static binaries for linux/amd64 and linux/arm64 in dist/, with dist/SHA256SUMS
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
.PHONY: release
release:
	rm -rf dist
	mkdir -p dist
	set -e; for platform in $(RELEASE_PLATFORMS); do \
		os=$${platform%/*}; arch=$${platform#*/}; \
		for cmd in p2http p2xmpp; do \
			echo "build dist/$$cmd-$$os-$$arch ($(VERSION))"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
				-ldflags "-s -w -X main.version=$(VERSION)" \
				-o dist/$$cmd-$$os-$$arch ./cmd/$$cmd; \
		done; \
	done
	cd dist && sha256sum p2http-* p2xmpp-* > SHA256SUMS
	cat dist/SHA256SUMS
