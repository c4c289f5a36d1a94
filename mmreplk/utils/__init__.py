from .io import atomic_save, load_checkpoint_file

__all__ = ['atomic_save', 'load_checkpoint_file']
