"""LoTTS Search Options: the search's options beyond the paper, composed into one input (as core's
SamplerCustomAdvanced takes its sampler, sigmas and guider from small nodes)."""

from . import _search_options


class LoTTSSearchOptions:
    CATEGORY = "LoTTS/search"
    FUNCTION = "options"
    RETURN_TYPES = (_search_options.OPTIONS_TYPE,)
    RETURN_NAMES = ("options",)
    OUTPUT_TOOLTIPS = ("Connect to the 'options' input of LoTTS Search (all options) or LoTTS Best-of-N (pruning).",)
    DESCRIPTION = ("Options beyond the paper for LoTTS Search: region masks, crops, per-region choice, an NFE budget "
                   "and early pruning. Without this node the search is the paper's.")

    @classmethod
    def INPUT_TYPES(cls):
        # optional: an API graph (or the client's --set) may give only the inputs it changes; the rest default
        return {"required": {}, "optional": _search_options.option_inputs()}

    def options(self, **options):
        return (dict(options),)


NODE_CLASS_MAPPINGS = {"LoTTSSearchOptions": LoTTSSearchOptions}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSSearchOptions": "LoTTS Search Options"}
