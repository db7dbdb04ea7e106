"""JetStream: streams, consumers, their `$JS.API` surface, and the storage under them.

    service.py        enable_jetstream(server): per-account JetStream, banner, recovery, shutdown
    api.py            the $JS.API responder: subscriptions, dispatch, responses; build_router()
    api_router.py     ApiRouter (the route table), ApiRequest, paging shared by the handlers
    stream_api.py     $JS.API.INFO and $JS.API.STREAM.* (create, update, info, names, list,
                      delete, purge, message get/delete)
    consumer_api.py   $JS.API.CONSUMER.* (create forms, info, names, list, delete, pause, unpin)
    config.py         StreamConfig: strict decoding (decode.py), defaults, validation, JSON
    queues.py         the API and ingest queue limits: defaults, drops, their log and advisory
    stream.py         a stream: ingest, pub-acks after durability, limits/TTL timer, delete
                      markers, purge/get/delete, the listener hooks consumers use
    batches.py        atomic batches (ADR-50): staging, commit rules, abandoning, the ack
    fast_batches.py   fast-ingest batches (ADR-50, allow_batched): `.$FI` reply subjects,
                      flow-control acks, gaps, pings, commits, the idle timer
    schedules.py      message schedules (ADR-51): publish rules, Scheduler (timer, firing)
    schedule_patterns.py  @at, @every, 6-field cron and time zones: parsing, next firing
    counters.py       counter streams (ADR-49): Nats-Incr rules, totals, sourced deltas
    consumer.py       a consumer: cursor, pending acks, redelivery timer, what goes out next
    consumer_delivery.py  the Protocols between a consumer and its delivery (pull or push)
    consumer_config.py    ConsumerConfig: decoding, defaults, validation, update rules
    consumer_reset.py     CONSUMER.RESET (ADR-60): where to, which policies allow it, reply
    durable_replies.py    double-ack replies, sent once the ack and the message are durable
    pull.py           MSG.NEXT bodies, waiting requests, status messages, PullDelivery
    pace.py           replay_policy original for pull and push, and the delivery wake timer
    push.py           PushDelivery (deliver subject, flow control) and InterestWatch
    acks.py           $JS.ACK subjects (v1 and v2) and ack payloads
    direct.py         $JS.API.DIRECT.GET.<stream>[.<subject>]
    sources.py        mirrors and sources
    remote_sources.py the consumer that feeds a mirror or source from another domain
    backup.py         STREAM.SNAPSHOT / STREAM.RESTORE: backups sent and restored in chunks
    s2.py             S2 streams (sans-I/O): Snappy framing, S2 blocks with repeat copies
    archive.py        NATSARC1 (sans-I/O): the entries of a stream backup, nats-server 2.15
    legacy_backup.py  the tar backups of nats-server <= 2.14 (sans-I/O): Go's file store
                      layout read into the state, consumers and entries NATSARC1 would hold
    advisories.py     $JS.EVENT.ADVISORY.* and $JS.EVENT.METRIC.*
    jsz.py            /jsz and the JetStream part of /healthz
    errors.py         the error catalogue (data/jetstream-errors.json, package data)
    decode.py         strict JSON decoding of requests, with Go's decoder errors
    headers.py        NATS header blocks: parse, look up, build, edit
    limits.py         per-account JetStream limits, read from the config
    store/            message and consumer-state storage (memory and file):
        base.py         the contract (MessageStore), values, errors
        indexed.py      what both message stores share: limits, purge, queries, TTL
        index.py        the in-memory sequence/subject index
        memory.py       MemoryStore
        file.py         FileStore: segments, cache, recovery
        segment.py records.py snapshot.py   segment files, on-disk records, index snapshot
        durability.py   sync policy and group commit
        fileio.py       FileIO, the only door to the disk
        crypt.py        encryption at rest: the encrypting FileIO, key rotation at start-up
        metadata.py     durable metadata files (configs, snapshots), durable removal
        consumer.py     ConsumerStore: delivered/ack-floor/pending state and its log
        subjects.py     subject filters

Times and durations come from `pynats.gotime`. Key-Value buckets and Object Stores are
client conventions on streams, direct gets and ordered consumers: nothing here is specific
to them.

`pynats.server` never imports this package; `pynats.app` attaches it when `-js` is on.
"""
