"""Clients of the tests on the real stack: a staff member's (a superuser's) and a user's."""

from __future__ import annotations

import subprocess
import sys
import uuid

from chatclient.client import ChatClient
from tests.support.stack import REPO, Stack

PASSWORD = "correct horse battery staple 42"


def staff_account(stack: Stack, *, superuser: bool = False) -> str:
    """A staff member's account on the stack (a superuser's with `superuser`); its email."""
    email = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    flags = "is_staff=True, is_superuser=True" if superuser else "is_staff=True"
    create = (
        "from accounts.models import User; "
        f"User.objects.create_user({email!r}, {PASSWORD!r}, {flags})"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", create],
        cwd=REPO,
        env=stack.env,
        check=True,
    )
    return email


def staff_client(stack: Stack, *, superuser: bool = False) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.login(staff_account(stack, superuser=superuser), PASSWORD)
    return client


def user_client(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"user-{uuid.uuid4().hex[:10]}@example.com", PASSWORD)
    client.login()
    return client
