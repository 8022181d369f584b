"""Tiny specs of the families beyond tiny_models' own, in its format (the real config, model and text-encoder classes
at small widths): Lumina 2, AuraFlow, OmniGen2, Chroma Radiance, PixArt Sigma and Hunyuan-DiT (both hosts), and those
only ComfyUI 0.33 and newer sample (ERNIE-Image, Krea 2, Ideogram 4, Lens, Boogu, JoyImage, Mage-Flow, PixelDiT,
Anima, HiDream-O1). A class this host lacks gives config_class None (tiny_models leaves those out)."""

import comfy.supported_models
import torch

from . import vocabularies


def specs(llama_tiny, t5_tiny):
    """{family: spec}; `llama_tiny`, `t5_tiny`: tiny_models' text-encoder widths."""
    return {
        # Lumina 2: Z-Image's NextDiT class with the original settings (GQA 3:1, theta 1e4, ffn x4, no Z-Image
        # modulation or token padding); Gemma 2 text, its SentencePiece model built in code. The system-prompt
        # template comes from the CLIPTextEncodeLumina2 node, not the tokenizer
        "lumina2": dict(config_class=getattr(comfy.supported_models, "Lumina2", None),
                        unet={"image_model": "lumina2", "patch_size": 2, "in_channels": 16, "dim": 96,
                              "cap_feat_dim": 32, "n_layers": 2, "n_refiner_layers": 1, "n_heads": 3, "n_kv_heads": 1,
                              "qk_norm": True, "multiple_of": 16, "axes_dims": [12, 10, 10],
                              "axes_lens": [300, 512, 512], "rope_theta": 10000.0, "ffn_dim_multiplier": 4.0},
                        clip=("lumina2", "LuminaTokenizer", "te", {}),
                        clip_options={"gemma2_2b_model_config": llama_tiny},  # head_dim stays Gemma's 256
                        tokenizer_data=vocabularies.gemma_tokenizer_data, latent_channels=16),
        # AuraFlow: SDXL's latent, patch 2, a learned position table, 8 registers before the text; MMDiT double
        # blocks then single blocks on [registers + text ; image]; Pile-T5 text padded to at least 256 tokens
        "auraflow": dict(config_class=getattr(comfy.supported_models, "AuraFlow", None),
                         unet={"in_channels": 4, "out_channels": 4, "patch_size": 2, "dim": 64, "n_layers": 2,
                               "n_double_layers": 1, "n_heads": 2, "global_conddim": 64, "cond_seq_dim": 32,
                               "max_seq": 64},  # n_double_layers < n_layers: a last double block has no mlpC
                         clip_options={"pile_t5xl_model_config": t5_tiny}, latent_channels=4),
        # OmniGen2: Lumina-style blocks; refiners on text and image, then joint layers on [text ; references ; image];
        # Qwen2.5 text in the chat template its tokenizer adds
        "omnigen2": dict(config_class=getattr(comfy.supported_models, "Omnigen2", None),
                         unet={"image_model": "omnigen2", "patch_size": 2, "in_channels": 16, "out_channels": None,
                               "hidden_size": 96, "num_layers": 2, "num_refiner_layers": 1, "num_attention_heads": 3,
                               "num_kv_heads": 1, "multiple_of": 16, "ffn_dim_multiplier": None, "norm_eps": 1e-5,
                               "axes_dim_rope": [8, 12, 12], "axes_lens": [1024, 1664, 1664], "text_feat_dim": 32,
                               "timestep_scale": 1000.0},
                         clip=("omnigen2", "Omnigen2Tokenizer", "te", {}),
                         clip_options={"qwen25_3b_model_config": llama_tiny},  # head_dim stays the class's 128
                         latent_channels=16),
        # Chroma Radiance: Chroma's FLUX blocks on 16 px patches, then a per-patch NeRF head over the pixels; T5 text
        "chroma_radiance": dict(
            config_class=getattr(comfy.supported_models, "ChromaRadiance", None),
            unet={"image_model": "chroma_radiance", "in_channels": 3, "out_channels": 3, "context_in_dim": 32,
                  "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 4, "depth": 1, "depth_single_blocks": 1,
                  "axes_dim": [4, 6, 6], "theta": 10000, "patch_size": 16, "qkv_bias": True, "in_dim": 64,
                  "out_dim": 64, "hidden_dim": 64, "n_layers": 1, "txt_ids_dims": [], "vec_in_dim": None,
                  "nerf_hidden_size": 16, "nerf_mlp_ratio": 2, "nerf_depth": 2, "nerf_max_freqs": 8,
                  "nerf_tile_size": 512, "nerf_final_head_type": "conv", "nerf_embedder_dtype": torch.float32,
                  "use_x0": False, "use_sequential_txt_ids": False},  # the last two: 0.33 only (_accepted drops them)
            clip=("pixart_t5", "PixArtTokenizer", "pixart_te", {}), clip_options={"t5xxl_model_config": t5_tiny},
            latent_channels=3, vae="pixel"),
        # PixArt Sigma: DiT blocks with a separate cross-attention to T5; ComfyUI's PixArt needs 272 px or more
        "pixart": dict(config_class=getattr(comfy.supported_models, "PixArtSigma", None),
                       unet={"patch_size": 2, "in_channels": 4, "hidden_size": 48, "depth": 2, "num_heads": 2,
                             "mlp_ratio": 2.0, "caption_channels": 32, "input_size": 32, "image_model": "pixart_sigma",
                             "model_max_length": 300, "micro_condition": False},
                       clip_options={"t5xxl_model_config": t5_tiny}, latent_channels=4),
        # Hunyuan-DiT: self-attention, then cross-attention to 77 BERT and 256 mT5 tokens; v-prediction; mT5's
        # SentencePiece model ships inside checkpoints (built in code)
        "hunyuan_dit": dict(config_class=getattr(comfy.supported_models, "HunyuanDiT", None),
                            unet={"image_model": "hydit", "input_size": 32, "patch_size": 2, "in_channels": 4,
                                  "hidden_size": 64, "depth": 4, "num_heads": 2, "mlp_ratio": 2.0,
                                  "text_states_dim": 32, "text_states_dim_t5": 32, "text_len": 77,
                                  "text_len_t5": 256, "qk_norm": True, "size_cond": False, "use_style_cond": False},
                            clip_options={"hydit_clip_model_config": {"hidden_size": 32, "intermediate_size": 64,
                                                                      "num_attention_heads": 2,
                                                                      "num_hidden_layers": 2},
                                          "mt5xl_model_config": t5_tiny},
                            tokenizer_data=vocabularies.mt5_tokenizer_data, latent_channels=4),
        # ERNIE-Image: one single-stream DiT, image tokens then text; FLUX.2's latent (128 channels at 1/16, patch 1);
        # text = Ministral 3, whose tekken vocabulary ships inside the checkpoint (built in code)
        "ernie": dict(config_class=getattr(comfy.supported_models, "ErnieImage", None),
                      unet={"image_model": "ernie", "hidden_size": 64, "num_attention_heads": 2, "num_layers": 2,
                            "ffn_hidden_size": 128, "in_channels": 128, "out_channels": 128, "patch_size": 1,
                            "text_in_dim": 32, "rope_theta": 256, "rope_axes_dim": [8, 12, 12]},
                      clip=("ernie", "ErnieTokenizer", "te", {}),
                      clip_options={"ministral3_3b_model_config": llama_tiny},
                      tokenizer_data=vocabularies.ministral_tokenizer_data, latent_channels=128),
        # Krea 2: single stream, text (12 fused Qwen3-VL layers, so the encoder keeps its 36) then image; 5-D Wan 2.1
        "krea2": dict(config_class=getattr(comfy.supported_models, "Krea2", None),
                      unet={"image_model": "krea2", "features": 64, "tdim": 256, "txtdim": 32, "heads": 4, "kvheads": 2,
                            "multiplier": 4, "layers": 2, "patch": 2, "channels": 16, "theta": 1e3, "txtlayers": 12,
                            "txtheads": 2, "txtkvheads": 2},
                      clip=("krea2", "Krea2Tokenizer", "te", {}),
                      clip_options={"qwen3vl_4b_model_config": {**llama_tiny, "num_hidden_layers": 36}},
                      latent_channels=16, vae="wan21", skip_init=("visual.",)),
        # Ideogram 4: one sequence, text (13 Qwen3-VL layers concatenated) then 2x2-packed Flux2 latent cells; its
        # config class forces full widths through unet_extra_config, so the small ones are written back after it
        "ideogram4": dict(config_class=getattr(comfy.supported_models, "Ideogram4", None),
                          unet={"image_model": "ideogram4", "in_channels": 128, "num_layers": 2},
                          unet_extra={"num_attention_heads": 2, "attention_head_dim": 32, "intermediate_size": 64,
                                      "adaln_dim": 32, "llm_features_dim": 13 * 32, "rope_theta": 5000000,
                                      "mrope_section": [6, 5, 5], "norm_eps": 1e-5},
                          clip=("ideogram4", "Ideogram4Tokenizer", "te", {}),
                          clip_options={"qwen3vl_8b_model_config": {**llama_tiny, "num_hidden_layers": 36}},
                          latent_channels=128),
        # Lens: dual-stream MMDiT on Flux2 latents, image then text; text = 4 GPT-OSS layers (24 kept, 32 wide, its
        # real vocabulary size for the Harmony special ids); tokenizer.json and weights come as a checkpoint would
        "lens": dict(config_class=getattr(comfy.supported_models, "Lens", None),
                     unet={"image_model": "lens", "patch_size": 2, "in_channels": 128, "out_channels": 32,
                           "num_layers": 2, "attention_head_dim": 32, "num_attention_heads": 2, "enc_hidden_dim": 32,
                           "axes_dims_rope": [8, 12, 12], "multi_layer_encoder_feature": True,
                           "selected_layer_index": [0, 1, 2, 3]},
                     clip=("gpt_oss", "LensTokenizer", "lens_te", {}),
                     clip_options={"gpt_oss_config": {"hidden_size": 32, "intermediate_size": 32,
                                                      "num_attention_heads": 2, "num_key_value_heads": 1,
                                                      "head_dim": 16, "num_local_experts": 4,
                                                      "num_experts_per_tok": 2}},
                     tokenizer_data=vocabularies.gpt_oss_tokenizer_data, te_state_dict=True, latent_channels=128),
        # Boogu-Image: OmniGen2 relative, [text ; image] in double- and single-stream blocks; FLUX.1's latent
        "boogu": dict(config_class=getattr(comfy.supported_models, "Boogu", None),
                      unet={"image_model": "boogu", "patch_size": 2, "in_channels": 16, "hidden_size": 64,
                            "num_layers": 1, "num_double_stream_layers": 1, "num_refiner_layers": 1,
                            "num_attention_heads": 4, "num_kv_heads": 2, "multiple_of": 16, "axes_dim_rope": [4, 6, 6],
                            "axes_lens": [1024, 256, 256], "instruction_feat_dim": 32, "timestep_scale": 1000.0},
                      clip=("boogu", "BooguTokenizer", "te", {}), clip_options={"qwen3vl_8b_model_config": llama_tiny},
                      latent_channels=16, skip_init=("visual.",)),
        # JoyImage: double-stream MMDiT, image then text, 5-D Wan 2.1 latents; its config forces head dim 128
        "joyimage": dict(config_class=getattr(comfy.supported_models, "JoyImage", None),
                         unet={"image_model": "joyimage", "patch_size": [1, 2, 2], "in_channels": 16,
                               "out_channels": 16, "hidden_size": 256, "num_attention_heads": 2, "text_dim": 32,
                               "mlp_width_ratio": 2.0, "num_layers": 2},
                         clip=("joyimage", "JoyImageTokenizer", "te", {}),
                         clip_options={"qwen3vl_8b_model_config": llama_tiny}, latent_channels=16, vae="wan21",
                         skip_init=("visual.",)),
        # Mage-Flow: Qwen-Image's blocks (text then image) on Flux2 latents, patch 1; Qwen3-VL text
        "mage_flow": dict(config_class=getattr(comfy.supported_models, "MageFlow", None),
                          unet={"image_model": "mage_flow", "in_channels": 128, "out_channels": 128, "num_layers": 2,
                                "attention_head_dim": 32, "num_attention_heads": 2, "joint_attention_dim": 32,
                                "axes_dims_rope": [8, 12, 12]},
                          clip=("mage_flow", "MageFlowTokenizer", "te", {}),
                          clip_options={"qwen3vl_4b_model_config": llama_tiny}, latent_channels=128,
                          skip_init=("visual.",)),
        # PixelDiT: pixel space (3 channels, 1 px per cell); patch-level MMDiT (text then image) then pixel blocks;
        # text = Gemma 2 over a fixed instruction prompt, cut to 300 tokens; its SentencePiece model built in code
        "pixeldit": dict(config_class=getattr(comfy.supported_models, "PixelDiTT2I", None),
                         unet={"image_model": "pixeldit_t2i", "in_channels": 3, "hidden_size": 64, "num_groups": 2,
                               "pixel_hidden_size": 16, "pixel_attn_hidden_size": 64, "pixel_num_groups": 2,
                               "patch_depth": 2, "pixel_depth": 1, "patch_size": 16, "txt_embed_dim": 32,
                               "txt_max_length": 300, "use_text_rope": True, "text_rope_theta": 10000.0},
                         clip=("pixeldit", "PixelDiTGemma2Tokenizer", "pixeldit_te", {}),
                         clip_options={"gemma2_2b_model_config": llama_tiny},
                         tokenizer_data=vocabularies.gemma_tokenizer_data, latent_channels=3, vae="pixel"),
        # Anima: Cosmos-Predict2's DiT (self-attention, then cross-attention to the text) behind an LLM adapter that
        # the model class builds at full width (130 M parameters), narrowed while it is built; 5-D Wan 2.1 latents
        "anima": dict(config_class=getattr(comfy.supported_models, "Anima", None),
                      unet={"image_model": "anima", "max_img_h": 240, "max_img_w": 240, "max_frames": 128,
                            "in_channels": 16, "out_channels": 16, "patch_spatial": 2, "patch_temporal": 1,
                            "concat_padding_mask": True, "model_channels": 64, "num_blocks": 2, "num_heads": 2,
                            "crossattn_emb_channels": 32, "pos_emb_cls": "rope3d", "pos_emb_learnable": True,
                            "pos_emb_interpolation": "crop", "min_fps": 1, "max_fps": 30, "use_adaln_lora": True,
                            "adaln_lora_dim": 16, "extra_per_block_abs_pos_emb": False,
                            "rope_h_extrapolation_ratio": 4.0, "rope_w_extrapolation_ratio": 4.0,
                            "rope_t_extrapolation_ratio": 1.0, "extra_h_extrapolation_ratio": 1.0,
                            "extra_w_extrapolation_ratio": 1.0, "extra_t_extrapolation_ratio": 1.0,
                            "rope_enable_fps_modulation": False},
                      ctor_overrides={("comfy.ldm.anima.model", "LLMAdapter"): dict(
                          source_dim=32, target_dim=32, model_dim=32, num_layers=1, num_heads=2)},
                      clip=("anima", "AnimaTokenizer", "te", {}), clip_options={"qwen3_06b_model_config": llama_tiny},
                      latent_channels=16, vae="wan21"),
        # HiDream-O1: pixel-space DiT on Qwen3-VL's decoder (text then 32 px patches); the "text encoder" only emits
        # token ids, so the config class's own clip target serves
        "hidream_o1": dict(config_class=getattr(comfy.supported_models, "HiDreamO1", None),
                           unet={"image_model": "hidream_o1",
                                 "text_config_overrides": {"hidden_size": 32, "intermediate_size": 64,
                                                           "num_hidden_layers": 2, "num_attention_heads": 1,
                                                           "num_key_value_heads": 1},
                                 "vision_config_overrides": {"hidden_size": 32, "num_heads": 2,
                                                             "intermediate_size": 64, "depth": 1}},
                           clip_options={}, latent_channels=3, vae="pixel"),
    }
