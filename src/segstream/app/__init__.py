"""The thin Faust shell around the pure engine: settings, topics, the app and its agents."""
