"""WorkerMetrics: the contract's names, labels, units and separate registries."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from segstream.app.metrics import DEAD_LETTER_KINDS, METRIC_NAMES, WorkerMetrics


def samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered text, keyed by (name, sorted labels)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def family_names(metrics: WorkerMetrics) -> set[str]:
    """Names as the text format writes them (`# TYPE` lines), counters with `_total`."""
    names = set()
    for line in metrics.render().decode().splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(
                f"{name}_total" if kind == "counter" and not name.endswith("_total") else name
            )
    return names


def exercise(metrics: WorkerMetrics) -> None:
    """Call every method once, as a worker would."""
    metrics.consumed("p.profiles", "profile.updated")
    metrics.consumed("p.activity", "invalid", 2)
    metrics.processing(0.0004)
    metrics.end_to_end(0.2)
    metrics.membership_change("vip", entered=True)
    metrics.membership_change("vip", entered=False)
    metrics.set_members("vip", 12)
    metrics.dead_letter("schema")
    metrics.set_lag("p.profiles", 3, 40)
    metrics.set_assigned(2)
    metrics.set_restoring(3, True)
    metrics.restored(1.5)
    metrics.set_ready(True)
    metrics.timer_lag(0.3)
    metrics.set_backfill_remaining("vip", 100)
    metrics.transaction(committed=True)
    metrics.transaction(committed=False)
    metrics.batch(0.05)
    metrics.profile_step_failed("timer")
    metrics.internal_record_skipped("control")
    metrics.batch_retry("record")
    metrics.internal_record_skipped("segments")
    metrics.misrouted("p.activity")
    metrics.task_restarted("status")


def test_every_contract_metric_is_exported_with_its_exact_name() -> None:
    metrics = WorkerMetrics()
    exercise(metrics)
    assert set(METRIC_NAMES) <= family_names(metrics)
    assert all(name.startswith("segstream_") for name in METRIC_NAMES)
    assert len(METRIC_NAMES) == 21


def test_counters_end_in_total_and_carry_their_labels() -> None:
    metrics = WorkerMetrics()
    exercise(metrics)
    got = samples(metrics)
    topic_type = (("topic", "p.profiles"), ("type", "profile.updated"))
    assert got[("segstream_events_consumed_total", topic_type)] == 1
    invalid = (("topic", "p.activity"), ("type", "invalid"))
    assert got[("segstream_events_consumed_total", invalid)] == 2
    assert (
        got[("segstream_membership_changes_total", (("segment", "vip"), ("type", "entered")))] == 1
    )
    assert got[("segstream_membership_changes_total", (("segment", "vip"), ("type", "left")))] == 1
    assert got[("segstream_dead_letters_total", (("kind", "schema"),))] == 1
    assert got[("segstream_transactions_total", (("outcome", "committed"),))] == 1
    assert got[("segstream_transactions_total", (("outcome", "aborted"),))] == 1


def test_gauges_hold_the_last_value_and_partitions_are_labels() -> None:
    metrics = WorkerMetrics()
    exercise(metrics)
    metrics.set_lag("p.profiles", 3, 7)
    metrics.set_restoring(3, False)
    got = samples(metrics)
    lag = (("partition", "3"), ("topic", "p.profiles"))
    assert got[("segstream_consumer_lag_records", lag)] == 7
    assert got[("segstream_partition_restoring", (("partition", "3"),))] == 0
    assert got[("segstream_segment_members", (("segment", "vip"),))] == 12
    assert got[("segstream_backfill_remaining_profiles", (("segment", "vip"),))] == 100
    assert got[("segstream_partitions_assigned", ())] == 2
    assert got[("segstream_ready", ())] == 1


def test_histograms_are_in_seconds_with_buckets_for_their_range() -> None:
    metrics = WorkerMetrics()
    exercise(metrics)
    got = samples(metrics)

    def bounds(name: str) -> list[float]:
        return sorted(
            float(dict(labels)["le"])
            for (sample, labels) in got
            if sample == f"{name}_bucket" and dict(labels)["le"] != "+Inf"
        )

    for name in (
        "segstream_end_to_end_latency_seconds",
        "segstream_batch_duration_seconds",
        "segstream_timer_lag_seconds",
    ):
        assert bounds(name)[0] == 0.001
        assert bounds(name)[-1] >= 30.0
    assert bounds("segstream_restore_duration_seconds")[0] == 0.1
    assert bounds("segstream_restore_duration_seconds")[-1] == 600.0
    assert bounds("segstream_processing_duration_seconds")[0] < 0.001
    assert got[("segstream_restore_duration_seconds_count", ())] == 1
    assert got[("segstream_restore_duration_seconds_sum", ())] == 1.5
    assert got[("segstream_end_to_end_latency_seconds_bucket", (("le", "0.25"),))] == 1
    assert got[("segstream_end_to_end_latency_seconds_bucket", (("le", "0.1"),))] == 0


def test_clock_skew_never_observes_a_negative_latency() -> None:
    metrics = WorkerMetrics()
    metrics.end_to_end(-2.0)
    metrics.timer_lag(-0.5)
    got = samples(metrics)
    assert got[("segstream_end_to_end_latency_seconds_sum", ())] == 0
    assert got[("segstream_timer_lag_seconds_sum", ())] == 0


def test_fresh_worker_exports_zeroed_dead_letter_kinds_outcomes_and_not_ready() -> None:
    got = samples(WorkerMetrics())
    for kind in DEAD_LETTER_KINDS:
        assert got[("segstream_dead_letters_total", (("kind", kind),))] == 0
    assert got[("segstream_transactions_total", (("outcome", "committed"),))] == 0
    assert got[("segstream_ready", ())] == 0


def test_forgetting_drops_label_sets_and_is_idempotent() -> None:
    metrics = WorkerMetrics()
    exercise(metrics)
    metrics.forget_segment("vip")
    metrics.forget_segment("vip")
    metrics.forget_lag("p.profiles", 3)
    metrics.forget_lag("p.profiles", 3)
    metrics.forget_partition(3)
    got = samples(metrics)
    assert ("segstream_segment_members", (("segment", "vip"),)) not in got
    assert ("segstream_backfill_remaining_profiles", (("segment", "vip"),)) not in got
    assert not any(name == "segstream_consumer_lag_records" for (name, _) in got)
    assert not any(name == "segstream_partition_restoring" for (name, _) in got)
    # Counters keep the deleted segment, so rate() over the deletion stays continuous.
    assert got[("segstream_membership_changes_total", (("segment", "vip"), ("type", "left")))] == 1


def test_instances_do_not_share_a_registry() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.dead_letter("schema")
    assert samples(second)[("segstream_dead_letters_total", (("kind", "schema"),))] == 0
    assert first.registry is not second.registry
    assert b"segstream_dead_letters_total" in second.render()


def test_gc_pauses_are_timed_by_generation() -> None:
    import gc

    from segstream.app import heap

    metrics = WorkerMetrics()
    callback = heap.timed(metrics.gc_pause)
    try:
        gc.collect()
        gc.collect(0)
    finally:
        heap.untimed(callback)
    assert callback not in gc.callbacks
    got = samples(metrics)
    assert got[("segstream_gc_pause_seconds_count", (("generation", "2"),))] >= 1
    assert got[("segstream_gc_pause_seconds_count", (("generation", "0"),))] >= 1
    assert got[("segstream_gc_pause_seconds_sum", (("generation", "2"),))] > 0
