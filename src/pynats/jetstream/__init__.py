"""JetStream: streams, consumers, their `$JS.API` surface, and the storage under them.

    service.py     enable_jetstream(server): per-account JetStream, banner, recovery, shutdown
    api.py         the $JS.API.* router (JSON in, JSON out)
    config.py      StreamConfig: strict decoding (decode.py), defaults, validation, JSON
    stream.py      a stream: ingest, pub-acks after durability, limits/TTL timer, delete
                   markers, purge/get/delete, the listener hooks consumers use
    consumer.py    a consumer: cursor, pending acks, redelivery timer, pull queue, push
    consumer_config.py   ConsumerConfig: decoding, defaults, validation, update rules
    consumer_api.py      $JS.API.CONSUMER.* (create forms, info, names, list, delete, pause)
    pull.py        MSG.NEXT bodies, waiting requests, status messages
    push.py        interest watching for push consumers
    acks.py        $JS.ACK subjects (v1 and v2) and ack payloads
    direct.py      $JS.API.DIRECT.GET.<stream>[.<subject>]
    sources.py     mirrors and sources
    advisories.py  $JS.EVENT.ADVISORY.* and $JS.EVENT.METRIC.*    jsz.py  /jsz, /healthz
    errors.py      the error catalogue (data/jetstream-errors.json, package data)
    headers.py transform.py limits.py   helpers (times: pynats.gotime)
    store/         message and consumer-state storage (memory and file)

Key-Value buckets and Object Stores are client conventions on streams, direct gets and
ordered consumers: nothing here is specific to them.

`pynats.server` never imports this package; `pynats.app` attaches it when `-js` is on.
"""
