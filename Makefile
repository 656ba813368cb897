# Builds of winspect; every artifact goes under out/ (deploy/README.md describes each one).
#
#   make all       client and server
#   make client    out/winspect-VERSION-py3-none-any.whl, out/winspect-VERSION.tar.gz,
#                  out/bin/winspect/ (the client and its files: PyInstaller's one-directory build),
#                  out/winspect-VERSION-OS-ARCH.tar.gz (.zip on Windows) of it, and the krew
#                  plugin manifest out/krew/winspect.yaml (RELEASE_URL: where the archives go)
#   make server    out/winspect-VERSION-py3-none-any.whl and out/image/, the build context of
#                  the Windows image (needs PYTHON_EMBED and network access for pip download)
#   make manifests deploy/base/*.yaml from src/winspect/deploy/data/*.yaml
#   make clean     removes out/ and build/ (setuptools' leftovers), not the build venv
#
# The build tools (pyproject's optional group `build`) are installed into the venv $(VENV),
# created on first use. PY=/path/to/python uses that interpreter as it is instead.

VENV ?= .venv
ifeq ($(OS),Windows_NT)
VENV_BIN := Scripts
EXE := .exe
else
VENV_BIN := bin
EXE :=
endif
ifeq ($(origin PY),undefined)
PY := $(VENV)/$(VENV_BIN)/python
BUILD_ENV := $(VENV)/.winspect-build-env
else
BUILD_ENV :=
endif

OUT ?= out
BUILD_DIR ?= build
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL := $(OUT)/winspect-$(VERSION)-py3-none-any.whl
SDIST := $(OUT)/winspect-$(VERSION).tar.gz
CLIENT_DIR := $(OUT)/bin/winspect
CLIENT_BIN := $(CLIENT_DIR)/winspect$(EXE)
# Where the client archives are published (the krew manifest's URIs): a directory URL.
RELEASE_URL ?= file://$(abspath $(OUT))
# Python's embeddable distribution for the image: a local file or a URL (python.org).
PYTHON_EMBED ?= https://www.python.org/ftp/python/3.11.9/python-3.11.9-embed-amd64.zip
WHEELHOUSE ?= $(OUT)/wheelhouse-win_amd64
# OFFLINE=1: take the Windows wheels only from $(WHEELHOUSE), no pip download.
OFFLINE ?=

.PHONY: all client server wheel sdist bin archive krew image-context manifests clean

all: client server

client: wheel sdist bin archive krew

server: wheel image-context

$(BUILD_ENV): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[build]'
	touch $@

wheel: $(BUILD_ENV)
	@mkdir -p $(OUT)
	rm -rf $(WHEEL) build/lib  # setuptools would reuse build/lib, stale files included
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(OUT) .
	@echo "built $(WHEEL)"

sdist: $(BUILD_ENV)
	@mkdir -p $(OUT)
	$(PY) -m build --sdist --no-isolation --outdir $(OUT) .

# PyInstaller, one directory: the executable, its Python and the packages as files beside it (no
# Python needed where it runs). One directory rather than one file: a one-file executable unpacks
# itself into a temporary directory on every start (0.8 s against 0.08 s for `--help`).
# The CLI imports its subcommands by name and lightkube its resource modules by name, so both
# packages are collected whole; importlib.metadata needs winspect's metadata for `winspect version`.
# grpc_tools (which grpc would use only to compile .proto files at run time) is left out, and with
# it setuptools; multiprocessing too (nothing the client runs uses it): PyInstaller's start-up
# hooks of both would cost every run of the client.
bin: $(BUILD_ENV)
	@mkdir -p $(OUT)/bin $(OUT)/build
	rm -rf $(CLIENT_DIR)  # also the single file of earlier builds
	$(PY) -m PyInstaller --noconfirm --log-level WARN --onedir --name winspect \
		--distpath $(OUT)/bin --workpath $(OUT)/build/pyinstaller --specpath $(OUT)/build \
		--paths src --collect-submodules winspect --collect-data winspect --copy-metadata winspect \
		--collect-submodules lightkube \
		--exclude-module grpc_tools --exclude-module setuptools --exclude-module pkg_resources \
		--exclude-module multiprocessing \
		src/winspect/cli/__main__.py
	$(CLIENT_BIN) --help > /dev/null
	$(CLIENT_BIN) version --client
	@echo "built $(CLIENT_BIN)"

# The archive of out/bin/winspect/ (with kubectl-winspect beside winspect), and its .sha256.
archive:
	$(PY) scripts/release_client.py archive --dist $(CLIENT_DIR) --version $(VERSION) --out $(OUT)
	$(CLIENT_DIR)/kubectl-winspect$(EXE) --help > /dev/null

# The krew manifest from deploy/krew/winspect.yaml: a platform for every archive of this version
# in $(OUT) (copy there the archives built on the other systems first).
krew:
	$(PY) scripts/release_client.py krew --template deploy/krew/winspect.yaml --version $(VERSION) \
		--archives $(OUT) --url '$(RELEASE_URL)' --out $(OUT)/krew/winspect.yaml

image-context: wheel
	$(PY) scripts/build_image_context.py --wheel $(WHEEL) --python-embed '$(PYTHON_EMBED)' \
		--out $(OUT)/image --wheelhouse $(WHEELHOUSE) $(if $(OFFLINE),--offline)
	@echo "built $(OUT)/image: docker buildx build --platform windows/amd64 --push -t REGISTRY/winspectserv:$(VERSION) $(OUT)/image"

manifests:
	cp src/winspect/deploy/data/namespace.yaml src/winspect/deploy/data/serviceaccount.yaml \
		src/winspect/deploy/data/rbac.yaml src/winspect/deploy/data/daemonset.yaml deploy/base/

clean:
	rm -rf $(OUT) $(BUILD_DIR)
