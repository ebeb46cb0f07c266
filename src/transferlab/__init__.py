"""transferlab: image classification by transfer learning."""
