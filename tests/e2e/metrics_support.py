"""Clients of the metrics tests on the real stack: a staff member's and a user's."""

from __future__ import annotations

import subprocess
import sys
import uuid

from chatclient.client import ChatClient
from tests.support.stack import REPO, Stack

PASSWORD = "correct horse battery staple 42"


def staff_client(stack: Stack) -> ChatClient:
    email = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    create = (
        "from accounts.models import User; "
        f"User.objects.create_user({email!r}, {PASSWORD!r}, is_staff=True)"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", create],
        cwd=REPO,
        env=stack.env,
        check=True,
    )
    client = ChatClient(stack.base_url)
    client.login(email, PASSWORD)
    return client


def user_client(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"user-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)
    client.login()
    return client
