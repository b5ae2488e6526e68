"""Packaging for wmstats: the static-schema WMStats library and services."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = {}
exec((HERE / "wmstats" / "_version.py").read_text(), VERSION)
PLUGINS = ["wmstats_sqlite", "wmstats_couchdb"]
# isal, zstandard and brotli write; urllib3 (so the client) reads zstd through
# backports.zstd before Python 3.14 and br through brotli.
COMPRESS = ["isal>=1.5", "zstandard>=0.22", "brotli>=1.1",
            "backports.zstd>=1.0; python_version < '3.14'"]

setup(
    name="wmstats",
    version=VERSION["__version__"],
    description="Static-schema monitoring backend for CMS WMCore workflows (WMStats)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # Storage backends other than the built-in memory one, data sources and plugin
    # commands live in plugins/ and register themselves through the
    # ``wmstats.backends``, ``wmstats.sources`` and ``wmstats.commands`` entry point
    # groups (wmstats.plugins). A plain install needs nothing from the extras:
    # "test" is what the test suite needs (pytest, playwright for the browser tests
    # and ``wmstats bench ui``), "dev" adds the type checker and the linters.
    packages=[*find_packages(include=["wmstats", "wmstats.*"]), *PLUGINS],
    package_dir={name: f"plugins/{name}" for name in PLUGINS},
    package_data={"wmstats": ["py.typed", "web/static/*"], **{name: ["py.typed"] for name in PLUGINS}},
    include_package_data=True,
    install_requires=[
        "attrs>=23.1",
        "cattrs>=23.2",
        # The JSON home (wmstats.serialize) writes and reads with orjson, ujson for
        # what orjson refuses (integers beyond 64 bits, NaN); it also decodes
        # CouchDB's pages for the CouchDB source, 2-2.5x faster than ujson.
        "orjson>=3.9",
        "ujson>=5.7",
        "requests>=2.28",
        # The client mounts urllib3's Retry (Retry-After, allowed_methods) on its
        # requests session; requests brings urllib3, this states the version we need.
        "urllib3>=1.26",
        "CherryPy>=18.8",
        # /metrics of the cache server: the Prometheus text format, histograms and
        # process metrics, from one CollectorRegistry per app (never the global one).
        "prometheus_client>=0.16",
        # Regular expression filters run on RE2 (linear time in the text, whatever
        # the pattern): a backtracking engine let one 33-character pattern hold
        # the GIL for minutes.  Its wheels bundle RE2 (manylinux, macOS, Windows).
        "google-re2>=1.1,<2",
    ],
    extras_require={
        # Faster and smaller responses (wmstats.stream): gzip through ISA-L, zstd and
        # brotli; and the memory store's job records in less memory (zstd with a
        # shared dictionary, wmstats.backends.jobcodec). Optional: binary wheels,
        # not on every platform; without them gzip goes through zlib, only gzip is
        # offered and the job records use zlib with a preset dictionary.
        "compress": COMPRESS,
        "test": ["pytest>=8", "hypothesis>=6.80", "jsonschema>=4.18", "schemathesis>=4",
                 "playwright>=1.40", *COMPRESS],
        "dev": ["pytest>=8", "hypothesis>=6.80", "jsonschema>=4.18", "schemathesis>=4",
                "mypy>=1.10", "types-ujson", "types-requests", "tox>=4",
                "import-linter>=2.17; python_version >= '3.11'"],
    },
    entry_points={
        "console_scripts": ["wmstats = wmstats.cli:main"],
        "pytest11": ["wmstats = wmstats.pytest_plugin"],
        "wmstats.backends": [
            "sqlite = wmstats_sqlite:SqliteStore",
            "couchdb = wmstats_couchdb:CouchStore",
        ],
        "wmstats.sources": ["couchdb = wmstats_couchdb.source:CouchSource"],
        "wmstats.commands": ["couch-seed = wmstats_couchdb.seed:SeedCommand"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Typing :: Typed",
        "License :: OSI Approved :: Apache Software License",
    ],
)
