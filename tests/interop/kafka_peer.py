"""A Python service on Kafka that speaks eventwire's wire format through the
CloudEvents SDK's Kafka binding (binary mode), for tests/kafka_transport.rs.

    kafka_peer.py publish BOOTSTRAP TOPIC CE_TYPE   one OrderShipped event
    kafka_peer.py read BOOTSTRAP TOPIC COUNT        COUNT records, one JSON line each

Uses kafka-python and cloudevents, installed by scripts/test into .tools/python.
"""

import json
import sys
from datetime import datetime, timezone

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def publish(bootstrap, topic, ce_type):
    event = CloudEvent(
        attributes={
            "type": ce_type,
            "source": "python-shipping",
            "id": "py-0001",
            "time": datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc),
            "datacontenttype": "application/json",
            "schemaversion": "2",
            "partitionkey": "o-42",
            "correlationid": "corr-py",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        },
        data={"order_id": "o-42", "items": ["book", "pen"], "total_cents": 1250},
    )
    message = to_binary(event, JSONFormat())
    headers = list(message.headers.items()) + [("x-carrier", b"dhl")]
    key = message.key.encode() if isinstance(message.key, str) else message.key
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, value=message.value, key=key, headers=headers).get(timeout=30)
    producer.flush()
    producer.close()


def read(bootstrap, topic, count):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=30000)
    partitions = consumer.partitions_for_topic(topic) or set()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    consumer.seek_to_beginning()
    seen = 0
    for record in consumer:
        message = KafkaMessage(
            headers={k: v for k, v in record.headers},
            key=record.key,
            value=record.value,
        )
        event = from_binary(message, JSONFormat())
        attributes = {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in event.get_attributes().items()
        }
        if isinstance(attributes.get("partitionkey"), bytes):
            attributes["partitionkey"] = attributes["partitionkey"].decode()
        print(json.dumps({"attributes": attributes, "data": event.get_data()}), flush=True)
        seen += 1
        if seen >= count:
            break
    consumer.close()
    if seen < count:
        sys.exit(f"read {seen} of {count} records from {topic}")


if __name__ == "__main__":
    mode, bootstrap, topic, arg = sys.argv[1:5]
    if mode == "publish":
        publish(bootstrap, topic, arg)
    else:
        read(bootstrap, topic, int(arg))
