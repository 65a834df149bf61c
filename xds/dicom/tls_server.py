"""DICOM TLS (PS3.15 Annex B.1) on the SCP port, with refused handshakes reported.

pynetdicom wraps each accepted socket in its accept loop (``AssociationServer.get_request``):
the handshake then blocks every other caller until it ends, and a failed one vanishes without a
trace. Here the accept loop only accepts; the handshake runs in the association's own thread
with a deadline, and a failure goes to ``on_refused`` (ATNA Security Alert).
"""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import datetime
from typing import Any, cast

from pynetdicom import AE
from pynetdicom.events import EventHandlerType
from pynetdicom.transport import ThreadedAssociationServer

from xds.security.accept import (
    HANDSHAKE_TIMEOUT, OnRefused, peer_host, refusal_reason, report_refusal,
)

__all__ = ["start_tls_server"]


class _TlsAssociationServer(ThreadedAssociationServer):
    tls: ssl.SSLContext
    on_refused: OnRefused | None
    listener: str

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = cast(socket.socket, self.socket).accept()
        return client, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        peer = peer_host(client_address)
        try:
            request.settimeout(HANDSHAKE_TIMEOUT)
            wrapped = self.tls.wrap_socket(request, server_side=True)
            wrapped.settimeout(None)
        except (OSError, ssl.SSLError) as exc:
            request.close()
            reason = refusal_reason(exc)
            report_refusal(self.on_refused, peer, self.listener, reason)
            return
        super().process_request_thread(wrapped, client_address)


def start_tls_server(ae: AE, address: tuple[str, int], context: ssl.SSLContext,
                     on_refused: OnRefused | None,
                     evt_handlers: list[EventHandlerType]) -> ThreadedAssociationServer:
    """``ae.start_server(address, block=False, ...)`` with TLS from ``context``."""
    server = ae.make_server(address, evt_handlers=evt_handlers,
                            server_class=_TlsAssociationServer)
    assert isinstance(server, _TlsAssociationServer)
    server.tls = context
    server.on_refused = on_refused
    server.listener = f"dicom:{server.server_address[1]}"
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    thread = threading.Thread(target=server.serve_forever, name=f"AcceptorServer@{stamp}",
                              daemon=True)
    thread.start()
    # As AE.start_server does: AE.shutdown stops the servers in this list.
    ae._servers.append(server)
    return server
