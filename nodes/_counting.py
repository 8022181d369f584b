"""Counting model evaluations on a clone: one per image row that reaches the diffusion model."""


class EvaluationCounter:
    def __init__(self):
        self.count = 0


def counting_clone(model):
    """(clone, counter): a clone whose every denoiser call adds its batch rows to counter.count.
    An existing model function wrapper (e.g. another node's patch) is kept and called inside."""
    counter = EvaluationCounter()
    clone = model.clone()
    previous = clone.model_options.get("model_function_wrapper")

    def wrapper(apply_model, args):
        counter.count += args["input"].shape[0]
        if previous is not None:
            return previous(apply_model, args)
        return apply_model(args["input"], args["timestep"], **args["c"])

    clone.set_model_unet_function_wrapper(wrapper)
    return clone, counter
