-- Loaded on startup: only the <Plug> mappings. Nothing starts until require("localcode").setup()
-- (or vim.lsp.enable("localcode") on 0.11+, which finds lsp/localcode.lua on 'runtimepath').
if vim.g.loaded_localcode then
  return
end
vim.g.loaded_localcode = true

vim.keymap.set("i", "<Plug>(localcode-accept)", function()
  require("localcode.inline").accept()
end, { desc = "localcode: accept the ghost-text suggestion" })
vim.keymap.set("i", "<Plug>(localcode-dismiss)", function()
  require("localcode.inline").dismiss()
end, { desc = "localcode: dismiss the ghost-text suggestion" })
