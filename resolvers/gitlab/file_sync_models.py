"""What `vcs.file-sync` takes and returns: file operations, the request and the result."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.errors import GatewayError
from gateway.registry import repo_of_url
from gateway.tasks.lease import resource_of
from gateway.tasks.reconcile import BaseReconcileRequest, ReconcileStatus
from resolvers.github.api import REF
from resolvers.gitlab.api import FileAction, file_path

MAX_OPERATIONS = 100
MAX_TITLE_CHARS = 255
"""GitLab's limit on a merge request title."""
MAX_DESCRIPTION_CHARS = 100_000
MAX_COMMIT_MESSAGE_CHARS = 4096
MAX_LABELS = 20
MAX_LABEL_CHARS = 255
MAX_REPO_URL_CHARS = 2048
MAX_CONTENT_BYTES = 524_288
"""One file's content (app-interface files are a few KiB); the task input's total
(`tasks.max_input_bytes`) bounds all of a request's contents together."""
AUTO_MERGE_LABEL = "bot/automerge"
"""The label qontract-reconcile's bots merge on (`reconcile.utils.mr.labels.AUTO_MERGE`)."""


class FileOperation(BaseModel):
    """One file change, made as its own commit: create or update with `content`, or delete."""

    model_config = ConfigDict(extra="forbid")

    action: FileAction
    path: str
    content: str | None = None
    commit_message: str = Field(min_length=1, max_length=MAX_COMMIT_MESSAGE_CHARS)

    @field_validator("path")
    @classmethod
    def repository_path(cls, path: str) -> str:
        """The path as GitLab names the file; no `.`, `..`, control characters; bounded."""
        try:
            return file_path(path)
        except GatewayError as refused:
            raise ValueError(refused.message) from None

    @field_validator("content")
    @classmethod
    def bounded_content(cls, content: str | None) -> str | None:
        """At most MAX_CONTENT_BYTES of UTF-8."""
        if content is not None and len(content.encode()) > MAX_CONTENT_BYTES:
            raise ValueError(f"a file's content is at most {MAX_CONTENT_BYTES} bytes")
        return content

    @model_validator(mode="after")
    def content_fits_action(self) -> "FileOperation":
        """`create` and `update` carry the content; `delete` carries none."""
        if self.action == "delete" and self.content is not None:
            raise ValueError("a delete takes no content")
        if self.action != "delete" and self.content is None:
            raise ValueError(f"a {self.action} needs the file's content")
        return self


class FileSyncRequest(BaseReconcileRequest):
    """Find-or-create one merge request; a dry run (the default) only says what it would do."""

    self_bounded = frozenset({"content", "description"})

    repo_url: str = Field(min_length=1, max_length=MAX_REPO_URL_CHARS)
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)
    target_branch: str
    operations: list[FileOperation] = Field(min_length=1, max_length=MAX_OPERATIONS)
    labels: list[str] = Field(default_factory=list, max_length=MAX_LABELS)
    auto_merge: bool = False

    @field_validator("title")
    @classmethod
    def one_line_title(cls, title: str) -> str:
        """A title is one line with text (it is what finds the merge request again)."""
        if not title.strip() or any(char in title for char in "\r\n"):
            raise ValueError("the title is one line of text")
        return title

    @field_validator("target_branch")
    @classmethod
    def branch_name(cls, branch: str) -> str:
        """A branch name as git allows it."""
        try:
            return REF.check(branch)
        except GatewayError as refused:
            raise ValueError(refused.message) from None

    @field_validator("labels")
    @classmethod
    def label_names(cls, labels: list[str]) -> list[str]:
        """Labels are non-empty, bounded, without commas (GitLab splits on them)."""
        for label in labels:
            if not label.strip() or len(label) > MAX_LABEL_CHARS or "," in label:
                raise ValueError(f"a label has 1 to {MAX_LABEL_CHARS} characters and no comma")
        return labels

    @property
    def merge_request_labels(self) -> list[str]:
        """The labels asked for, then the auto-merge label when asked for, once each."""
        extra = [AUTO_MERGE_LABEL] if self.auto_merge else []
        return list(dict.fromkeys([*self.labels, *extra]))

    @property
    def resource(self) -> str:
        """The lease of a real run: one per (repository, title), so two concurrent calls for
        the same merge request are one run and make one merge request."""
        host, project = repo_of_url(self.repo_url)
        return resource_of([f"vcs-file-sync:{host.lower()}:{project}:{self.title}"])


FileSyncOutcome = Literal["mr_created", "mr_exists", "mr_would_be_created"]


class PlannedOperation(BaseModel):
    """An operation as the result reports it: the change, never the content itself."""

    action: FileAction
    path: str
    commit_message: str
    content_bytes: int = Field(description="size of the content written (0 for a delete)")


class FileSyncResult(BaseModel):
    """What a run found or did: `failed` iff `errors`; a created MR's branch is removed by
    GitLab when it is merged, and by the run itself when a step fails."""

    status: ReconcileStatus
    outcome: FileSyncOutcome | None = None
    mr_url: str | None = None
    mr_iid: int | None = None
    branch: str | None = None
    labels: list[str] = Field(default_factory=list)
    operations: list[PlannedOperation] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
