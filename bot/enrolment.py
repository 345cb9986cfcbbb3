"""Enrolling an operator's face: from the CLI (photos on disk) or by an admin in the bot.

Several photos per operator make matching surer (a selfie is matched against the nearest of
them); each new one is reported with its distance to the nearest of the operator's other
photos and the spread of them all, and one far from all the others is flagged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from telegram import Update
from telegram.ext import CommandHandler, ContextTypes, ConversationHandler, MessageHandler, filters

from bot.access import admins_only
from bot.services import services
from storage import Store
from storage.models import Role
from vision.faces import (
    FaceEncoder,
    FaceStatus,
    Spread,
    encoding_from_bytes,
    encoding_to_bytes,
    face_distance,
    photo_hash,
    template_spread,
)

WAITING_PHOTO = 1
# A new photo farther than this from each of the operator's other photos deserves a look:
# in the shared faces, photos of one person are a median 0.39 apart and the nearest two
# photos of different people 0.52 (bench/face_templates.py).
FAR_FROM_OTHERS = 0.45
# Fewer photos than this: suggest another (one photo accepts 93 % of genuine selfies at
# 0.5, three 99 %, with no impostor accepted either way).
ENOUGH_PHOTOS = 3


@dataclass(frozen=True)
class EnrolResult:
    ok: bool
    message: str
    encoding: np.ndarray | None = None
    # To the nearest of the operator's photos enrolled before (None: the first).
    nearest: float | None = None

    @property
    def far(self) -> bool:
        return self.nearest is not None and self.nearest > FAR_FROM_OTHERS


def spread_text(spread: Spread) -> str:
    """'3 photos, 0.28–0.41 apart (median 0.35)'."""
    if spread.count < 2:
        return f"{spread.count} photo"
    return (f"{spread.count} photos, {spread.smallest:.2f}–{spread.largest:.2f} apart "
            f"(median {spread.median:.2f})")


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
    before = [encoding_from_bytes(t) for t in store.face_templates(user_id)]
    nearest = float(face_distance(np.stack(before), result.encoding).min()) if before else None
    op = store.get_operator(user_id, active_only=False)
    if op is None or not op.active:
        op = store.add_operator(user_id, name or (op.name if op else f"operator {user_id}"),
                                op.role if op else Role.OPERATOR)
        store.add_chat(user_id, title=op.name)
    store.add_face_template(user_id, encoding_to_bytes(result.encoding), digest)
    if keep_photo_dir is not None:
        keep_photo_dir.mkdir(parents=True, exist_ok=True)
        (keep_photo_dir / f"{user_id}-{digest[:16]}.jpg").write_bytes(photo)
    message = f"Enrolled a face for {op.name} ({user_id}); {len(before) + 1} on file."
    if nearest is not None:
        message += (f" Nearest of their other photos: {nearest:.2f}; "
                    f"{spread_text(template_spread(np.stack([*before, result.encoding])))}.")
        if nearest > FAR_FROM_OTHERS:
            message += (f"\n⚠️ This photo is far from all their others (above {FAR_FROM_OTHERS}): is it the "
                        f"same person, face lit and in focus? If not, remove the operator and enrol again.")
    return EnrolResult(True, message, result.encoding, nearest)


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
    if not result.ok:  # let the admin try another photo
        await update.effective_message.reply_text(result.message)
        context.user_data["enrol"] = (user_id, name)
        return WAITING_PHOTO
    count = await asyncio.to_thread(lambda: len(svc.store.face_templates(user_id)))
    more = (f"\nSelfies match surer with {ENOUGH_PHOTOS} or more photos in different light: "
            f"/enroll {user_id} for the next." if count < ENOUGH_PHOTOS else "")
    # The conversation ends here: an admin's own selfie sent next must not become a template.
    await update.effective_message.reply_text(result.message + more)
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
