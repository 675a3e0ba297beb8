"""Training: configs (the paper's recipes), the loop, checkpoints. The configs import without
torch (the CLI checks a recipe name before loading it); the loop loads on first use."""
from .._lazy import lazy_attributes
from .config import RECIPES, TrainConfig, get_recipe, list_recipes

__getattr__, __dir__ = lazy_attributes(
    __name__, {"TrainResult": ".loop", "lr_factor": ".loop", "train": ".loop"}, globals()
)

__all__ = ["RECIPES", "TrainConfig", "TrainResult", "get_recipe", "list_recipes", "lr_factor", "train"]
