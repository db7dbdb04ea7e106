"""JetStream: streams, their `$JS.API` surface, and the storage under them.

    service.py     enable_jetstream(server): per-account JetStream, banner, recovery, shutdown
    api.py         the $JS.API.* router (JSON in, JSON out); consumers register routes here
    config.py      StreamConfig: strict decoding (decode.py), defaults, validation, JSON
    stream.py      a stream: ingest, pub-acks after durability, limits/TTL timer, delete
                   markers, purge/get/delete, the listener hooks consumers use
    direct.py      $JS.API.DIRECT.GET.<stream>[.<subject>]
    sources.py     mirrors and sources
    advisories.py  $JS.EVENT.ADVISORY.*        jsz.py  /jsz and the /healthz check
    errors.py      the error catalogue (data/jetstream-errors.json, package data)
    headers.py timefmt.py transform.py limits.py   helpers
    store/         message and consumer-state storage (memory and file)

`pynats.server` never imports this package; `pynats.app` attaches it when `-js` is on.
"""
