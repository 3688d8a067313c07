from _data_fixtures import airground  # noqa: F401 - fixture re-export
