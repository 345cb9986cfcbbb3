"""What the tests share: data locations, detector and tracker doubles, fake cameras, the fake
Telegram Bot API, and the harnesses that run the real ``firewatch`` console script."""
