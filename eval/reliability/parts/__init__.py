"""The suite's parts: each module has `async def run(ctx: Context) -> None` that adds checks to ctx.tally."""
