"""Per-request context of the resolvers."""

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from trends_gql.auth import current_user
from trends_gql.db import Database
from trends_gql.models import User
from trends_gql.settings import Settings


@dataclass
class Context:
    """What every resolver may use; built per request by the app."""

    db: Database
    settings: Settings
    request: Request
    response: Any = None

    async def user(self) -> User | None:
        """The signed-in user, looked up once per request."""
        return await current_user(self.request, self.db)

    async def staff_email(self) -> str:
        """The email of the staff member making the request (IsStaff has checked it)."""
        user = await self.user()
        assert user is not None, "IsStaff ran first"
        return user.email

    def set_user(self, user: User | None) -> None:
        """Record a login or logout made by this request."""
        self.request.state.user = user
