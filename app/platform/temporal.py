"""The Temporal client the service layer (and the worker) use, built from settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import TLSConfig

from app.platform import tracing
from app.platform.codec import AesGcmCodec, embedded_keys
from app.platform.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS with a client certificate; plain TLS for an API key (Temporal Cloud); else none.

    Settings has already checked that the certificate and key come together.
    """
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        return TLSConfig(
            client_cert=Path(settings.temporal_tls_cert).read_bytes(),
            client_private_key=Path(settings.temporal_tls_key).read_bytes(),
        )
    # An API key is a bearer credential: never send it in the clear.
    return settings.temporal_api_key is not None


def cluster_address(settings: Settings) -> str:
    """The configured cluster, else the embedded dev server that `casework up` runs."""
    return settings.temporal_address or f"127.0.0.1:{settings.temporal_dev_port}"


def payload_codec(settings: Settings) -> AesGcmCodec | None:
    """The configured keys; the embedded stack's own key; or, for an external cluster
    with no key, None: plaintext (`plaintext_warning` says so; app.platform.codec says why)."""
    if settings.payload_keys:
        return AesGcmCodec(settings.payload_keys)
    if settings.temporal_address is None:
        return AesGcmCodec(embedded_keys(settings.data_dir))
    return None


def plaintext_warning(settings: Settings) -> str | None:
    """What the serving commands say at start-up when payloads go out unencrypted.

    Said by `up`, `worker` and `web` (which run a deployment), not by each short CLI
    command, whose stderr is one line by contract.
    """
    if settings.payload_keys or settings.temporal_address is None:
        return None
    return (
        f"WARNING: CASEWORK_PAYLOAD_KEYS is not set: case details, evidence and notes go "
        f"to Temporal at {settings.temporal_address} in PLAINTEXT, readable by whoever "
        "operates it; set CASEWORK_PAYLOAD_KEYS (README, Security) on every process"
    )


def converter_for(codec: AesGcmCodec | None) -> DataConverter:
    """Temporal's default converter, or with `codec` on every payload and failures' messages
    and stack traces moved into an encoded payload too (an activity's error can quote
    the data it failed on)."""
    if codec is None:
        return DataConverter.default
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: Settings) -> DataConverter:
    return converter_for(payload_codec(settings))


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """A client for the configured cluster, or the embedded dev server.

    `lazy` defers connecting to the first call, so a web process can start (and
    answer 503 on /healthz) before Temporal does; a Worker needs an eager client.
    """
    return await Client.connect(
        cluster_address(settings),
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls_config(settings),
        data_converter=data_converter(settings),
        interceptors=tracing.interceptors(),  # none unless tracing is on (app/platform/tracing.py)
        lazy=lazy,
    )
