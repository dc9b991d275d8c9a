-- Loaded on startup. Nothing starts until require("localcode").setup() is called, except the
-- global :LspLocalcode fallback that explains what to do in a buffer without the client.
if vim.g.loaded_localcode then
  return
end
vim.g.loaded_localcode = true
