"""Enrolling an operator's face: from the CLI (photos on disk) or by an admin in the bot."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from telegram import Update
from telegram.ext import CommandHandler, ContextTypes, ConversationHandler, MessageHandler, filters

from bot.access import admins_only
from bot.services import services
from storage import Store
from storage.models import Role
from vision.faces import FaceEncoder, FaceStatus, encoding_to_bytes, photo_hash

WAITING_PHOTO = 1


@dataclass(frozen=True)
class EnrolResult:
    ok: bool
    message: str


def enrol_photo(store: Store, encoder: FaceEncoder, user_id: int, name: str | None,
                photo: bytes, *, keep_photo_dir: Path | None = None) -> EnrolResult:
    """Store the face encoding of a photo that holds exactly one face.

    Creates the operator (and their alert chat) when new. The photo itself is kept only
    when ``keep_photo_dir`` is given.
    """
    result = encoder.encode(photo)
    if result.status is not FaceStatus.OK or result.encoding is None:
        return EnrolResult(False, result.message)
    digest = photo_hash(photo)
    if store.photo_seen(digest):
        return EnrolResult(False, "This photo is already enrolled.")
    op = store.get_operator(user_id, active_only=False)
    if op is None or not op.active:
        op = store.add_operator(user_id, name or (op.name if op else f"operator {user_id}"),
                                op.role if op else Role.OPERATOR)
        store.add_chat(user_id, title=op.name)
    store.add_face_template(user_id, encoding_to_bytes(result.encoding), digest)
    if keep_photo_dir is not None:
        keep_photo_dir.mkdir(parents=True, exist_ok=True)
        (keep_photo_dir / f"{user_id}-{digest[:16]}.jpg").write_bytes(photo)
    count = len(store.face_templates(user_id))
    return EnrolResult(True, f"Enrolled a face for {op.name} ({user_id}); {count} on file.")


@admins_only
async def start_enrol(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    args = context.args or []
    if not args or not args[0].isdigit() or not args[0].isascii() or len(args[0]) > 15:
        await update.effective_message.reply_text("Usage: /enroll USER_ID [NAME], then send their photo.")
        return ConversationHandler.END
    context.user_data["enrol"] = (int(args[0]), " ".join(args[1:])[:128] or None)
    await update.effective_message.reply_text(
        f"Send a photo of user {int(args[0])}'s face (exactly one face), or /cancel.")
    return WAITING_PHOTO


@admins_only
async def enrol_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    svc = services(context)
    user_id, name = context.user_data.pop("enrol", (None, None))
    if user_id is None:
        return ConversationHandler.END
    photo = update.effective_message.photo[-1]
    data = bytes(await (await photo.get_file()).download_as_bytearray())
    keep = svc.settings.data_dir / "faces" if svc.settings.keep_face_photos else None
    result = await asyncio.to_thread(enrol_photo, svc.store, svc.encoder, user_id, name, data,
                                     keep_photo_dir=keep)
    await update.effective_message.reply_text(result.message)
    if not result.ok:  # let the admin try another photo
        context.user_data["enrol"] = (user_id, name)
        return WAITING_PHOTO
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data.pop("enrol", None)
    await update.effective_message.reply_text("Cancelled.")
    return ConversationHandler.END


async def need_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await update.effective_message.reply_text("Send the face as a photo, or /cancel.")
    return WAITING_PHOTO


def enrolment_handler() -> ConversationHandler:
    return ConversationHandler(
        entry_points=[CommandHandler("enroll", start_enrol)],
        states={
            WAITING_PHOTO: [
                MessageHandler(filters.PHOTO, enrol_received),
                MessageHandler(~filters.COMMAND, need_photo),
            ]
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        conversation_timeout=300,
        name="enrolment",
    )
