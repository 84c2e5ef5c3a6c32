"""The stream shell around the pure engine: settings, topics, the worker loop and its parts
(partition tasks and transactions, restore, ticks, status, catalogue), stores and metrics."""
