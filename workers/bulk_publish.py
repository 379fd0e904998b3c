"""Publishing thousands of job messages in pipelined Redis round trips (a batch's jobs).

Celery's ``send_task`` costs about 0.4 ms of CPU per message here, and even kombu's producer
batches about 0.13 ms: 10,000 jobs would take seconds before the first round trip. A batch's
messages differ only in the job id, the task id and the priority, so the envelope is built
once by Celery and kombu (:meth:`celery.app.amqp.AMQP.as_task_v2`, kombu's
``Channel.prepare_message``), and each job's message is that envelope with those fields
filled in, as kombu's Redis transport would write it: the same JSON on the same list
(``<queue>`` or ``<queue>\\x06\\x16<priority>``), pushed with LPUSH, so workers consume it
as any other message. A broker other than Redis gets the messages through kombu's
producer batches instead.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu.serialization import dumps
from redis import Redis

PIPELINE_CHUNK = 2000
# Placeholders of the per-job values in the template; job and task ids never contain "@".
JOB_ID, TASK_ID, BODY, ARGSREPR, PRIORITY, TAG, TRACE = (
    f"@sy-{name}@" for name in ("job", "task", "body", "argsrepr", "priority", "tag", "trace")
)
FIELDS = {BODY: "body", ARGSREPR: "argsrepr", PRIORITY: "priority", TAG: "tag", TRACE: "trace"}
# Stands for the priority in a message whose priority Redis decides (workers/dispatch.py).
LEVEL_SLOT = "@sy-level@"
ID_SAFE = re.compile(r"[A-Za-z0-9_-]+")
TRACEPARENT_SAFE = re.compile(r"[0-9a-f-]{0,64}")  # W3C traceparent: JSON-safe as it is


class MessageTemplate:
    """The run_job message of one queue, built once by Celery and kombu, as JSON text with
    placeholders where each job's values go. ``traced``: it has a ``traceparent`` header
    (the task reads it as ``self.request.traceparent``; workers/tracing.py)."""

    def __init__(self, celery: Celery, task_name: str, queue: str, traced: bool = False) -> None:
        message = celery.amqp.as_task_v2(TASK_ID, task_name, args=[JOB_ID], ignore_result=True)
        content_type, encoding, self._body = dumps(message.body, serializer="json")
        with celery.producer_or_acquire() as producer:
            self._base64 = producer.channel.body_encoding == "base64"
            envelope: dict[str, Any] = producer.channel.prepare_message(
                BODY, 0, content_type, encoding, message.headers, message.properties
            )
        envelope["headers"]["argsrepr"] = ARGSREPR
        if traced:
            envelope["headers"]["traceparent"] = TRACE
        envelope["properties"].update(
            delivery_mode=2,  # persistent, as kombu's producer sets it
            delivery_info={"exchange": "", "routing_key": queue},
            body_encoding="base64" if self._base64 else None,
            priority=PRIORITY,
            delivery_tag=TAG,
        )
        # One str.format per job: the JSON's braces doubled, each quoted placeholder a field.
        # Every value filled in is JSON-safe as it is: base64, uuids, and ids of [A-Za-z0-9_].
        text = json.dumps(envelope).replace("{", "{{").replace("}", "}}")
        for placeholder, name in FIELDS.items():
            text = text.replace(f'"{placeholder}"', f'"{{{name}}}"' if name != "priority" else "{priority}")
        self._format = text.replace(TASK_ID, "{task}").format

    def encode(self, job_id: str, priority: int | str, traceparent: str = "") -> str:
        """The message of ``job_id`` as the transport stores it; ``priority`` may be
        :data:`LEVEL_SLOT`, for a script to fill in. ``traceparent`` goes in a traced template."""
        if not ID_SAFE.fullmatch(job_id):
            raise ValueError(f"job id {job_id!r} has characters the template cannot take as they are")
        body = self._body.replace(JOB_ID, job_id)
        body = base64.b64encode(body.encode()).decode() if self._base64 else json.dumps(body)[1:-1]
        return str(
            self._format(
                body=body,
                task=uuid.uuid4(),
                argsrepr=repr([job_id]),
                priority=priority,
                tag=uuid.uuid4(),
                trace=traceparent if TRACEPARENT_SAFE.fullmatch(traceparent) else "",
            )
        )


def push(redis: Redis, keys_and_messages: Sequence[tuple[str, str]]) -> None:
    """LPUSH each message on its list in order: a run of messages for the same list goes as
    one LPUSH of many values (a worker's BRPOP takes them first in, first out), and the
    commands go ``PIPELINE_CHUNK`` messages per round trip."""
    with redis.pipeline(transaction=False) as pipe:
        for start in range(0, len(keys_and_messages), PIPELINE_CHUNK):
            chunk = keys_and_messages[start : start + PIPELINE_CHUNK]
            for key, run in itertools.groupby(chunk, key=lambda pair: pair[0]):
                pipe.lpush(key, *(message for _, message in run))
            pipe.execute()
