"""Counting model evaluations on a clone: one per image row that reaches the diffusion model."""

import comfy.patcher_extension

APPLY_MODEL = getattr(getattr(comfy.patcher_extension, "WrappersMP", None), "APPLY_MODEL", None)


class EvaluationCounter:
    def __init__(self):
        self.count = 0


def add_apply_model_wrapper(clone, key, wrapper):
    """Add `wrapper(executor, x, t, c_concat, c_crossattn, *rest, **kwargs)` to a clone's APPLY_MODEL wrappers, which
    chain with every other node's; False on hosts without them (the caller then uses the single-slot function)."""
    if APPLY_MODEL is None or not hasattr(clone, "add_wrapper_with_key"):
        return False
    clone.add_wrapper_with_key(APPLY_MODEL, key, wrapper)
    return True


def counting_clone(model):
    """(clone, counter): a clone whose every denoiser call adds its batch rows to counter.count.
    Where the host has APPLY_MODEL wrappers the count is one of them (other nodes' wrappers and the single
    model_function_wrapper slot stay as they are); elsewhere an existing model function wrapper is called inside."""
    counter = EvaluationCounter()
    clone = model.clone()

    def apply_model_wrapper(executor, x, *args, **kwargs):
        counter.count += x.shape[0]
        return executor(x, *args, **kwargs)

    if add_apply_model_wrapper(clone, "lotts_nfe_counter", apply_model_wrapper):
        return clone, counter
    previous = clone.model_options.get("model_function_wrapper")

    def wrapper(apply_model, args):
        counter.count += args["input"].shape[0]
        if previous is not None:
            return previous(apply_model, args)
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone.set_model_unet_function_wrapper(wrapper)
    return clone, counter
